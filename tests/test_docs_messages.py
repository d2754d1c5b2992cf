"""Every example in docs/messages.md is accepted by the decoder, and the cmd example parses."""

from __future__ import annotations

import re
from pathlib import Path

import msgspec

from devices import MessageDecoder, Reading, Reason
from devices.messages import DutyCheckCommand

DOC = (Path(__file__).parent.parent / "docs" / "messages.md").read_text()
RECEIVED_MS = 1_795_000_100_000  # shortly after the examples' timestamps


def test_message_examples_are_accepted() -> None:
    blocks = re.findall(r"```message\n(.*?)```", DOC, re.S)
    assert len(blocks) >= 9
    decoder = MessageDecoder("fw")
    for block in blocks:
        topic, body = block.split("\n", 1)
        result = decoder.decode(topic.strip(), body.encode(), RECEIVED_MS)
        assert isinstance(result, Reading), (topic, result)
        assert not result.clock_corrected


def test_duty_check_command_example_parses() -> None:
    (block,) = re.findall(r"```json\n(.*?)```", DOC, re.S)
    command = msgspec.json.decode(block.encode(), type=DutyCheckCommand)
    assert command.cmd == "duty_check" and command.deadline_s == 600


def test_every_reason_code_is_documented() -> None:
    for reason in Reason:
        assert f"| `{reason.value}` |" in DOC
