# tests/integration/appliance/halfclose.py PORT N [PATH]: N TLS clients that
# each send 1-4 pipelined GETs, half-close (FIN), then close without reading
# the answers. The daemon's next write to such a connection fails with EPIPE;
# it must treat that as the connection's end, not the process's (SIGPIPE).
# Prints how many clients it completed; exits non-zero when one could not
# connect (the daemon is gone).
import socket
import ssl
import sys
import time

port, n = int(sys.argv[1]), int(sys.argv[2])
path = sys.argv[3] if len(sys.argv) > 3 else "/metrics"
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
done = 0
for i in range(n):
    try:
        t = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port)),
                            server_hostname="localhost")
        req = "GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % path
        t.sendall((req * (1 + i % 4)).encode())
        t.shutdown(socket.SHUT_WR)
        time.sleep(0.001 * (i % 3))
        t.close()
    except ConnectionRefusedError:
        print(done)
        sys.exit(1)
    except OSError:
        pass  # a reset handshake: the daemon is checked by the next one
    done += 1
print(done)
