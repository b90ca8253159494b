"""The pure parts: barge-in accounting, the replayed history, the append batcher."""

from __future__ import annotations

import pytest

from app.backends.base import AudioIn
from app.backends.realtime.history import ConversationHistory
from app.backends.realtime.playback import Interruption, PlaybackLedger, Truncation
from app.backends.realtime.uplink import AppendBatcher

MS = 48  # bytes of 24 kHz PCM16 per millisecond


def test_interrupt_cancels_the_response_and_truncates_its_item() -> None:
    ledger = PlaybackLedger()
    ledger.response_created("r1")
    assert ledger.accept("r1", "i1", 500 * MS)
    assert ledger.interrupt(lambda item: 120.9) == Interruption(
        "r1", Truncation("i1", 120), cut=("i1", 0.24)
    )
    assert not ledger.accept("r1", "i1", 100 * MS)  # a late delta
    assert ledger.generated_ms("i1") == 500


def test_interrupt_twice_does_nothing_the_second_time() -> None:
    ledger = PlaybackLedger()
    ledger.accept("r1", "i1", 500 * MS)
    assert ledger.interrupt(lambda item: 100.0) is not None
    assert ledger.interrupt(lambda item: 100.0) is None


def test_an_item_heard_in_full_is_not_truncated_when_the_next_response_has_no_audio_yet() -> None:
    ledger = PlaybackLedger()
    ledger.accept("r1", "i1", 200 * MS)
    ledger.response_done("r1")
    ledger.response_created("r2")
    assert ledger.interrupt(lambda item: 200.0) == Interruption("r2", None)


def test_an_items_playback_is_ended_once_whichever_event_says_its_audio_is_complete() -> None:
    ledger = PlaybackLedger()
    ledger.accept("r1", "i1", 200 * MS)
    ledger.accept("r1", "i2", 200 * MS)
    assert ledger.audio_done("i1")
    assert not ledger.audio_done("i1")
    assert ledger.response_done("r1") == ["i2"]  # no response.output_audio.done for i2
    assert ledger.response_done("r1") == []
    assert not ledger.audio_done("unknown")


def test_an_interrupted_response_has_no_playback_to_end() -> None:
    ledger = PlaybackLedger()
    ledger.accept("r1", "i1", 200 * MS)
    ledger.accept("r1", "i2", 200 * MS)
    assert ledger.interrupt(lambda item: 50.0) is not None
    assert not ledger.audio_done("i1")
    assert ledger.response_done("r1") == []


def test_a_new_session_forgets_the_old_one() -> None:
    ledger = PlaybackLedger()
    ledger.accept("r1", "i1", 200 * MS)
    ledger.reset()
    assert ledger.active_response is None
    assert ledger.interrupt(lambda item: 0.0) is None


def test_history_keeps_conversation_order_when_a_transcript_arrives_late() -> None:
    history = ConversationHistory()
    history.reserve("c1", "caller")
    history.record("a1", "agent", "Hello!")
    history.record("c1", "caller", "Hi")
    assert history.lines() == [("caller", "Hi"), ("agent", "Hello!")]


def test_history_is_bounded_and_skips_untranscribed_items() -> None:
    history = ConversationHistory(max_lines=3)
    for index in range(5):
        history.record(f"i{index}", "caller", f"line {index}")
    history.reserve("silent", "caller")
    assert [text for _, text in history.lines()] == ["line 3", "line 4"]
    assert len(history.replay()) == 2


def test_batcher_cuts_uneven_input_into_equal_appends() -> None:
    batcher = AppendBatcher(append_bytes=2880, frame_bytes=960)
    chunks = batcher.feed(AudioIn(b"\x01" * 2000)) + batcher.feed(AudioIn(b"\x02" * 4000))
    assert [len(c) for c in chunks] == [2880, 2880]
    assert chunks[0] == b"\x01" * 2000 + b"\x02" * 880


def test_batcher_follows_the_first_speaker_of_an_unmixed_call() -> None:
    batcher = AppendBatcher(append_bytes=960, frame_bytes=960)
    assert len(batcher.feed(AudioIn(b"\x00" * 960, participant_id="a"))) == 1
    assert batcher.feed(AudioIn(b"\x00" * 960, participant_id="b")) == []
    assert batcher.ignored_frames == 1


def test_batcher_refuses_an_odd_size() -> None:
    with pytest.raises(ValueError, match="even"):
        AppendBatcher(append_bytes=959, frame_bytes=960)


def test_batcher_completes_an_append_every_third_frame() -> None:
    batcher = AppendBatcher(append_bytes=2880, frame_bytes=960)
    completed = [len(batcher.feed(AudioIn(b"\x01" * 960))) for _ in range(6)]
    assert completed == [0, 0, 1] * 2
    silent = AudioIn(b"", silent=True)  # a silent frame without data counts as a whole frame
    assert [len(batcher.feed(silent)) for _ in range(3)] == [0, 0, 1]


def _replayed_texts(history: ConversationHistory) -> list[str]:
    texts = []
    for event in history.replay():
        [content] = event["item"]["content"]  # type: ignore[typeddict-item]
        texts.append(content["text"])
    return texts


def test_an_interrupted_agent_line_is_replayed_only_as_far_as_the_caller_heard_it() -> None:
    history = ConversationHistory()
    history.record("u1", "caller", "what are your opening hours")
    history.record("a1", "agent", "we open at nine and close at six on weekdays only")
    history.cut("a1", 0.3)  # the caller barged in 30 % into the answer
    history.record("u2", "caller", "and on saturday")
    assert _replayed_texts(history) == [
        "what are your opening hours",
        "we open at… [interrupted by the caller]",
        "and on saturday",
    ]
    # The call's own transcript keeps the whole line.
    assert history.lines()[1] == ("agent", "we open at nine and close at six on weekdays only")


def test_an_agent_line_cut_before_any_of_it_was_heard_is_not_replayed() -> None:
    history = ConversationHistory()
    history.cut("a1", 0.0)  # the cut may come before the transcript
    history.record("a1", "agent", "let me check that for you")
    history.record("u1", "caller", "never mind")
    assert _replayed_texts(history) == ["never mind"]
