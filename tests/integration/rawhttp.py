"""Raw HTTP/1.1 replies read off a socket by their Content-Length, for the
integration tests that write requests byte for byte (no client library
that would hide the framing)."""
import socket


def replies(s, n):
    """Up to n replies (status, headers, body) and the bytes after them;
    fewer when the server closes or sends nothing for s's timeout."""
    buf, out = b"", []
    while len(out) < n:
        end = buf.find(b"\r\n\r\n")
        if end >= 0:
            head = buf[:end].decode("latin-1").split("\r\n")
            hdrs = {k.lower(): v.strip() for k, _, v in (l.partition(":") for l in head[1:])}
            n_body = int(hdrs.get("content-length", "0"))
            if len(buf) >= end + 4 + n_body:
                out.append((int(head[0].split()[1]), hdrs, buf[end + 4:end + 4 + n_body]))
                buf = buf[end + 4 + n_body:]
                continue
        try:
            chunk = s.recv(1 << 20)
        except socket.timeout:
            break
        if not chunk:
            break
        buf += chunk
    return out, buf
