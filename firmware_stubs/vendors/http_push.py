"""Devices that push their events over HTTP: a Hikvision access controller (ISAPI
``EventNotificationAlert`` with ``AccessControllerEvent``, JSON), a Hikvision ANPR camera (the
XML alert in ``multipart/form-data`` with its pictures) and a Vzenith plate camera
(``AlarmInfoPlate`` JSON, the snapshot base64 inside, the gateway's reply read back).

Formats as the public sources describe them: the ISAPI pushes quoted in
pergolafabio/Hikvision-Addons#177 and the HCNetSDK event codes (major 5 events, 3 operations,
1 alarms); a real ANPR camera's alerts in maciej-or/hikvision_next's fixtures; Vzenith's field
model in ayayacc/parkLine. Each pushes to ``url`` (the gateway's
``/api/v1/ingest/<adapter>?token=...``) with the standard library's ``urllib``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.server
import json
import secrets
import threading
import time
import urllib.error
import urllib.request
import uuid
from datetime import UTC, datetime
from typing import Any

JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00stub-snapshot\xff\xd9"

# (major, minor) of the HCNetSDK access-control events these stubs send
CARD_PASS = (5, 0x01)
CARD_UNKNOWN = (5, 0x09)
DOOR_OPEN = (5, 0x19)
DOOR_CLOSE = (5, 0x1A)
DOOR_FORCED = (5, 0x1B)
REMOTE_OPEN = (3, 0x400)


def post(url: str, body: bytes, content_type: str, timeout: float = 10.0) -> tuple[int, bytes]:
    """POST and return (status, body), errors included (a 401 is an answer, not a crash)."""
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"expected an http(s) URL, not {url[:40]!r}")
    request = urllib.request.Request(  # noqa: S310 (the scheme is checked above)
        url, data=body, method="POST", headers={"Content-Type": content_type}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:  # noqa: S310
            return answer.status, answer.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def _iso_now() -> str:
    return datetime.now(UTC).astimezone().isoformat(timespec="seconds")


class HikvisionController:
    """An access controller (DS-K1T… face terminal) that numbers its events (``serialNo``)."""

    def __init__(self, url: str, *, mac: str = "bc:5e:33:62:2a:5c", door: int = 1) -> None:
        self.url, self.mac, self.door = url, mac, door
        self.serial = 1000
        self.answers: list[int] = []
        self.log: list[dict[str, Any]] = []  # every event, as its AcsEvent search lists it
        self.pushing = True  # False: the hub is unreachable; events are only kept

    def event(self, code: tuple[int, int], **fields: Any) -> int:
        """Log one event and push it (returns the HTTP status; 0 when not pushing)."""
        self.serial += 1
        when = _iso_now()
        self.log.append(
            {
                "major": code[0],
                "minor": code[1],
                "time": when,
                "doorNo": self.door,
                "serialNo": self.serial,
                **fields,
            }
        )
        if not self.pushing:
            return 0
        alert = {
            "ipAddress": "192.168.1.64",
            "portNo": 80,
            "protocol": "HTTP",
            "macAddress": self.mac,
            "dateTime": when,
            "activePostCount": 1,
            "eventType": "AccessControllerEvent",
            "eventState": "active",
            "eventDescription": "Access Controller Event",
            "AccessControllerEvent": {
                "deviceName": "DS-K1T502DBFWX-C",
                "majorEventType": code[0],
                "subEventType": code[1],
                "doorNo": self.door,
                "cardReaderNo": 1,
                "serialNo": self.serial,
                "currentEvent": True,
                **fields,
            },
        }
        status, _ = post(self.url, json.dumps(alert).encode(), "application/json")
        self.answers.append(status)
        return status

    def card(self, card_no: str = "3728410153", known: bool = True) -> int:
        if not known:
            return self.event(CARD_UNKNOWN, cardNo=card_no)
        return self.event(CARD_PASS, cardNo=card_no, employeeNoString="1021", name="B3-1201")

    def force_door(self) -> int:
        return self.event(DOOR_FORCED)


class AnprCamera:
    """A Hikvision ANPR camera: each read an XML alert with the plate crop and the vehicle."""

    def __init__(self, url: str, *, mac: str = "44:19:b6:0a:7e:21") -> None:
        self.url, self.mac = url, mac

    def read(self, plate: str | None, direction: str = "forward") -> int:
        xml = f"""<?xml version="1.0" encoding="UTF-8"?>
<EventNotificationAlert version="2.0" xmlns="http://www.hikvision.com/ver20/XMLSchema">
<ipAddress>10.2.124.188</ipAddress><macAddress>{self.mac}</macAddress><channelID>1</channelID>
<dateTime>{_iso_now()}</dateTime><activePostCount>1</activePostCount>
<eventType>ANPR</eventType><eventState>active</eventState>
<eventDescription>ANPR</eventDescription><UUID>{uuid.uuid4().hex}</UUID>
<ANPR><country>3</country><licensePlate>{plate or "unknown"}</licensePlate><line>1</line>
<direction>{direction}</direction><confidenceLevel>{95 if plate else 0}</confidenceLevel>
<plateType>unknown</plateType><plateColor>blue</plateColor><vehicleType>vehicle</vehicleType>
<laneNo>1</laneNo><vehicleListName>otherList</vehicleListName></ANPR>
</EventNotificationAlert>""".encode()
        boundary = "boundary"
        parts = [
            (b"anpr.xml", b"text/xml", xml),
            (b"licensePlatePicture.jpg", b"image/jpeg", JPEG),
            (b"vehiclePicture.jpg", b"image/jpeg", JPEG + b"vehicle"),
        ]
        body = b""
        for name, ctype, data in parts:
            body += (
                b"--" + boundary.encode() + b"\r\n"
                b'Content-Disposition: form-data; name="'
                + name
                + b'"; filename="'
                + name
                + b'"\r\n'
                b"Content-Type: " + ctype + b"\r\n\r\n" + data + b"\r\n"
            )
        body += b"--" + boundary.encode() + b"--\r\n"
        status, _ = post(self.url, body, f"multipart/form-data; boundary={boundary}")
        return status


class VzenithCamera:
    """A Vzenith (臻识) plate camera: it reads the answer (``info`` ``ok`` opens the barrier)."""

    def __init__(self, url: str, *, serial: str = "e2a5d4f1-77c0ab12") -> None:
        self.url, self.serial = url, serial
        self.plate_id = 1842
        self.replies: list[dict[str, Any]] = []

    def read(self, plate: str, color: int = 1) -> int:
        self.plate_id += 1
        now = time.time()
        body = {
            "AlarmInfoPlate": {
                "channel": 0,
                "deviceName": "IVS",
                "ipaddr": "192.168.1.100",
                "serialno": self.serial,
                "result": {
                    "PlateResult": {
                        "license": plate,
                        "colorType": color,
                        "confidence": 97,
                        "triggerType": 8,
                        "plateid": self.plate_id,
                        "direction": 4,
                        "isoffline": 0,
                        "timeStamp": {"Timeval": {"sec": int(now), "usec": int(now % 1 * 1e6)}},
                        "imageFile": base64.b64encode(JPEG).decode(),
                        "imageFileLen": len(JPEG),
                    }
                },
            }
        }
        status, answer = post(
            self.url, json.dumps(body, ensure_ascii=False).encode(), "application/json"
        )
        if status == 200:
            self.replies.append(json.loads(answer))
        return status

    def heartbeat(self) -> int:
        status, _ = post(
            self.url, json.dumps({"serialno": self.serial}).encode(), "application/json"
        )
        return status


class IsapiDoorServer:
    """The controller's own ISAPI endpoint for remote opening (``PUT /ISAPI/AccessControl/
    RemoteControl/door/<n>`` with ``<RemoteControlDoor><cmd>open</cmd>``), behind HTTP digest
    authentication (RFC 7616, MD5, ``qop=auth``) as Hikvision devices ask for. An accepted
    open answers a ``ResponseStatus`` of code 1 and, like the controller, pushes the
    ``REMOTE_OPEN_DOOR`` event it logged through ``controller``."""

    REALM = "DS-K1T502DBFWX-C"

    def __init__(
        self, username: str, password: str, controller: HikvisionController | None = None
    ) -> None:
        self.username, self.password, self.controller = username, password, controller
        self.opened: list[int] = []
        self.refused = 0
        self.searches = 0
        self._nonce = secrets.token_hex(16)
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                """The event-log search (``AcsEvent?format=json``) by serial number range."""
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                if not server._authorized(
                    self.command, self.path, self.headers.get("Authorization", "")
                ):
                    server._challenge(self)
                    return
                if not self.path.startswith("/ISAPI/AccessControl/AcsEvent"):
                    server._answer(self, 404, 4, "Invalid Operation", "notSupport")
                    return
                server.searches += 1
                cond = json.loads(body)["AcsEventCond"]
                found = [
                    e
                    for e in (server.controller.log if server.controller else [])
                    if cond.get("beginSerialNo", 0)
                    <= e["serialNo"]
                    <= cond.get("endSerialNo", 1 << 62)
                ]
                start, size = cond.get("searchResultPosition", 0), cond.get("maxResults", 30)
                page = found[start : start + size]
                answer = json.dumps(
                    {
                        "AcsEvent": {
                            "searchID": cond.get("searchID", ""),
                            "responseStatusStrg": "MORE" if start + size < len(found) else "OK",
                            "numOfMatches": len(page),
                            "totalMatches": len(found),
                            "InfoList": page,
                        }
                    }
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def do_PUT(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                if not server._authorized(
                    self.command, self.path, self.headers.get("Authorization", "")
                ):
                    server._challenge(self)
                    return
                prefix = "/ISAPI/AccessControl/RemoteControl/door/"
                door = self.path.removeprefix(prefix)
                if (
                    not self.path.startswith(prefix)
                    or not door.isdigit()
                    or b"<cmd>open" not in body
                ):
                    server._answer(self, 400, 4, "Invalid Operation", "invalidOperation")
                    return
                server.opened.append(int(door))
                server._answer(self, 200, 1, "OK", "ok")
                if server.controller is not None:
                    threading.Thread(target=server.controller.event, args=(REMOTE_OPEN,)).start()

            def log_message(self, *_args: Any) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def _authorized(self, method: str, uri: str, header: str) -> bool:
        scheme, _, rest = header.partition(" ")
        if scheme.lower() != "digest":
            return False
        fields = dict(
            (k.strip(), v.strip().strip('"'))
            for k, _, v in (p.partition("=") for p in rest.split(","))
        )

        def md5(text: str) -> str:
            return hashlib.md5(text.encode()).hexdigest()  # noqa: S324 - digest auth is MD5

        if fields.get("username") != self.username or fields.get("nonce") != self._nonce:
            return False
        ha1 = md5(f"{self.username}:{self.REALM}:{self.password}")
        ha2 = md5(f"{method}:{fields.get('uri', uri)}")
        expected = md5(
            f"{ha1}:{self._nonce}:{fields.get('nc', '')}:{fields.get('cnonce', '')}:"
            f"{fields.get('qop', '')}:{ha2}"
        )
        return hmac.compare_digest(expected, fields.get("response", ""))

    def _challenge(self, handler: Any) -> None:
        self.refused += 1
        handler.send_response(401)
        handler.send_header(
            "WWW-Authenticate",
            f'Digest realm="{self.REALM}", qop="auth", nonce="{self._nonce}", algorithm=MD5',
        )
        handler.send_header("Content-Length", "0")
        handler.end_headers()

    @staticmethod
    def _answer(handler: Any, status: int, code: int, text: str, sub: str) -> None:
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            '<ResponseStatus version="2.0" xmlns="http://www.isapi.org/ver20/XMLSchema">\n'
            f"<requestURL>{handler.path}</requestURL>\n<statusCode>{code}</statusCode>\n"
            f"<statusString>{text}</statusString>\n<subStatusCode>{sub}</subStatusCode>\n"
            "</ResponseStatus>"
        ).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/xml")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)
