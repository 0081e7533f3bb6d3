-- A run as `generate --json` prints it ("run"), so the service can serve it back; and
-- each bundle's place in the run's published order.
ALTER TABLE runs ADD COLUMN summary TEXT;
ALTER TABLE bundles ADD COLUMN position INTEGER;
