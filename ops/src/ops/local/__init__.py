"""The local platform: Kafka, PostgreSQL and the services as processes on this machine.

Used where no Docker engine exists (CI, the development machines): `ops up` starts what is
missing and `ops down` stops what `ops up` started. Everything runtime lives under `.local/`.
"""
