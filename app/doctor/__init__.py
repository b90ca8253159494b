"""`acs-bridge doctor`: checks a deployment from the outside in, before the first call.

proof.py      the identity proof the service answers to its own doctor (no I/O)
report.py     check results, their text and JSON forms, the exit code
config.py     the settings: what the service would refuse to start with
http.py       the doctor's clients: system trust (SSL_CERT_FILE / SSL_CERT_DIR honoured)
public.py     PUBLIC_BASE_URL: https, DNS, certificate, this very service, WebSocket, callbacks
eventgrid.py  the webhook's validation handshake, and the subscription command to run
acs.py        ACS credentials (a signed read that changes nothing), managed identity
backend.py    the media backend's handshake with its credentials
stores.py     Redis
runner.py     the checks in order, against a running service or one started with --start
command.py    the `acs-bridge doctor` command
"""
