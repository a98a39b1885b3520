"""Project: a collaboration project, one namespace with its members' roles and data defaults."""
