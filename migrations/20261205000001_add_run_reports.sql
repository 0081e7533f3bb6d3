-- A run's report.html as rendered when it was saved (its summary is a document the
-- service serves back as it is; the page is rendered from the whole run once).
ALTER TABLE runs ADD COLUMN report_html TEXT;
