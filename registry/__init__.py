"""Rules and storage of the backbone, one package per domain, over a shared kernel:
kernel (database, migrations, sealing, clock), rcd, trust, dsn, relations, habilitation, notify,
nomenclature, audit, operation, letters (the postal channel). Nothing here imports `server`."""
