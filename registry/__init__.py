"""Rules and storage of the backbone, one package per domain, over a shared kernel:
kernel (database, migrations, sealing, clock), rcd, trust, dsn, relations, habilitation, notify,
nomenclature, audit, operation. Nothing here imports `server`."""
