"""Network access from DropStream to the outside: the guarded outbound HTTP session."""
