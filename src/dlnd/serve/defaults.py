"""The server's default settings, in one place (``dlnd serve --help`` shows them too).

Plain values with no imports, so the command line can show them without loading the server.
"""

MAX_BATCH = 64  # most requests answered by one forward pass
MAX_WAIT_MS = 2.0  # how long a request may wait for others to share its forward pass
FORWARD_THREADS = 1  # threads of one forward pass (the batch already keeps a core busy)
PARSE_THREADS = 2  # requests parsed / images decoded at once
# Big enough for a phone photo; the pixel array of a 32x32 RGB image is about 40 kB.
MAX_BODY_BYTES = 8 * 1024 * 1024
HEADER_TIMEOUT_S = 10.0  # to send a request's headers
BODY_TIMEOUT_S = 30.0  # to send a request's body
KEEP_ALIVE_S = 5.0  # an idle keep-alive connection is closed after this
DRAIN_TIMEOUT_S = 30.0  # on SIGTERM, requests in flight get this long to finish
