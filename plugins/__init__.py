"""deb-mock's built-in plugins (installed as ``deb_mock.plugins``)."""
