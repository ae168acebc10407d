"""Report writers: HTML (jinja2 + matplotlib), JUnit XML."""
