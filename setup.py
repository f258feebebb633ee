"""What setup.cfg cannot say: the Alembic migrations ship inside pbgm's namespace.

The repository keeps them at the top (`migrations/`, where Alembic users look); a
wheel installs them as `pbgm/_migrations`, so that no top-level package of that
generic name is installed (`pbgm.store.sql.migrate.script_location` finds either).
Everything else is in setup.cfg.
"""

from setuptools import find_packages, setup

PACKAGES = find_packages(
    include=[
        "pbgm",
        "pbgm.*",
        "pbgm_admin",
        "pbgm_admin.*",
        "controls",
        "controls.*",
        "adapters",
        "adapters.*",
    ]
)

setup(
    packages=[*PACKAGES, "pbgm._migrations", "pbgm._migrations.versions"],
    package_dir={"pbgm._migrations": "migrations"},
    package_data={"pbgm._migrations": ["*.mako"]},
)
