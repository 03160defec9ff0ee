"""`spillway sfu speaker --room ID`: the join credentials of a room's speakers in Janus, as JSON.

Speakers join the AudioBridge room with the room's speaker token and one of its speaker participant ids
(the first free one: a slot whose previous connection Janus has not timed out yet answers 490). Both are
derived from SPILLWAY_JANUS_ROOM_SECRET (origin/admission/sfu/naming.py), read from the environment like
every origin setting; the token is printed on stdout only, for the speakers' app backend.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from origin.admission.sfu.factory import janus_public_url, room_keys
from origin.admission.sfu.naming import janus_room_id
from origin.contract import ids
from origin.errors import OriginError
from origin.settings import Settings


def speaker_credentials(settings: Settings, room: str) -> dict[str, object]:
    keys = room_keys(settings)
    return {
        "kind": "janus",
        "url": janus_public_url(settings),
        "room": janus_room_id(room),
        "token": keys.speaker_token(room),
        "participant_ids": list(keys.speaker_ids(room)),
    }


def add_parser(sub: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = sub.add_parser("sfu", help="SFU helpers (Janus speaker credentials)")
    actions = parser.add_subparsers(dest="sfu_command", required=True)
    speaker = actions.add_parser("speaker", help="print a room's speaker join credentials (JSON)")
    speaker.add_argument("--room", required=True, help="room id")
    speaker.set_defaults(run=run)
    return parser


def run(args: argparse.Namespace) -> int:
    try:
        room = ids.room_id(args.room)
        doc = speaker_credentials(Settings(), room)
    except OriginError as exc:
        sys.stderr.write(f"spillway sfu: error: {exc}\n")
        return 2
    sys.stdout.write(json.dumps(doc, indent=2) + "\n")
    return 0
