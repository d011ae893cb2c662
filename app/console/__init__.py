"""The operator console under /console: server-rendered pages, sessions and CSRF (issue 16)."""
