"""In-process fakes of the external daemons ipsec-nf talks to (for fast tests without root)."""
