"""Tests of running pbgm in production: metrics, logs, settings, services, deployment."""
