"""The item catalogue: its ingest, the business rules on every list, content neighbours."""
