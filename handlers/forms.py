"""Collecting a ticket in conversation, one question at a time: the machinery behind the
repair ticket (repair.py) and the second return (second_return.py).

A form is a list of questions. Every answer and every file is written to the draft
ticket in the turn that brings it, so the next question is always the first one still
unanswered: a restart, a /cancel and a later "Continue" all resume there, and an edit
from the review is just an answer given again. Wrong input (a PDF for a photo, text for
a video, an album with too many photos) gets a re-ask that says what is needed and keeps
everything collected so far.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from markupsafe import Markup, escape

from domain.chats import ChatKey
from domain.tickets import (
    Ticket,
    TicketAnswered,
    TicketKind,
    TicketMedia,
    TicketMediaSet,
    TicketOpened,
    TicketStatus,
    TicketStatusSet,
    new_ticket_id,
)
from faq.loader import fill_placeholders
from handlers.engine import Services, Turn
from handlers.i18n import N_, Translate
from handlers.menu import menu_button
from handlers.messages import Button, Media, MediaKind

FLOW = "ticket"
ASKING, CONFIRMING, REVIEWING = "waiting_for_answer", "waiting_for_file_order", "waiting_for_submit"
# Answers are kept as text; a yes/no question stores one of these.
YES, NO = "yes", "no"
SKIPPED = "-"
# A review shows the gist of long answers; staff get them whole.
REVIEW_VALUE_CHARS = 300
_LINK = re.compile(r"https?://[^\s<>\"']{4,}", re.IGNORECASE)


class Ask(StrEnum):
    TEXT = "text"
    CHOICE = "choice"
    FILES = "files"
    # Things to try before a ticket is needed, one message each.
    CHECKS = "checks"


class Accept(StrEnum):
    IMAGE = "image"
    VIDEO = "video"


@dataclass(frozen=True)
class Choice:
    value: str
    label: str


@dataclass(frozen=True)
class Files:
    """What a files question takes: `slots` names each file wanted, in order (the front
    side, the back side); without slots, one to `at_most` files and a Done button."""

    accepts: frozenset[Accept] = frozenset({Accept.IMAGE})
    slots: tuple[str, ...] = ()
    at_most: int = 10
    # A video too big for the bot to receive may be given as a link instead.
    link_instead: bool = False


Answers = Mapping[str, str]


def _always(answers: Answers) -> bool:
    return True


def free_text(text: str) -> str | None:
    """Any text with something in it, whitespace tidied."""
    text = " ".join(text.split())
    return text or None


def at_least(chars: int) -> Callable[[str], str | None]:
    """Text of at least so many characters: a description, an address."""

    def parse(text: str) -> str | None:
        text = text.strip()
        return text if len(text) >= chars else None

    return parse


@dataclass(frozen=True)
class Question:
    name: str
    # Shown in the review, on the edit button and to staff (marked with N_).
    label: str
    prompt: str
    ask: Ask = Ask.TEXT
    choices: tuple[Choice, ...] = ()
    files: Files | None = None
    # For CHECKS: the checks that apply, given the answers so far.
    checks: Callable[[Answers], tuple[str, ...]] | None = None
    # For TEXT: the answer as stored, or None if it is not acceptable.
    parse: Callable[[str], str | None] = free_text
    invalid: str = N_("Please answer in a few words.")
    max_chars: int = 200
    # The label of a button that skips the question; None: an answer is required.
    skip: str | None = None
    # A photo (of the serial-number sticker, say) may stand in for the typed answer.
    photo_instead: bool = False
    # Asked only when this holds for the answers so far.
    when: Callable[[Answers], bool] = _always
    # Runs once the question is answered (or answered again); False: it ended the form.
    after: Callable[[Turn, Draft], Awaitable[bool]] | None = None
    editable: bool = True


# What the customer reads before submitting (the warranty, what they pay) and staff see on
# the ticket: (services, the customer's chat, answers, language) -> lines.
Coverage = Callable[[Services, ChatKey, Answers, str], Awaitable[list[Markup]]]


@dataclass(frozen=True)
class Form:
    kind: TicketKind
    title: str
    intro: str
    questions: tuple[Question, ...]
    coverage: Coverage
    # Answers every ticket of the kind starts with (the second return's reason).
    fixed: Mapping[str, str] = field(default_factory=dict)

    def question(self, name: str) -> Question | None:
        return next((q for q in self.questions if q.name == name), None)

    def asked(self, answers: Answers) -> list[Question]:
        """The questions that apply to these answers, in order."""
        return [q for q in self.questions if q.when(answers)]


class Draft:
    """A ticket as this turn changes it: reads see the changes at once, and each change
    becomes a record written with the turn."""

    def __init__(self, turn: Turn, ticket: Ticket) -> None:
        self.turn = turn
        self.id = ticket.id
        self.answers: dict[str, str] = dict(ticket.answers)
        self.files: dict[str, list[TicketMedia]] = {k: list(v) for k, v in ticket.media.items()}

    def answer(self, name: str, value: str | None) -> None:
        if self.answers.get(name) == value:
            return
        if value is None:
            self.answers.pop(name, None)
        else:
            self.answers[name] = value
        self.turn.records.append(TicketAnswered(self.id, name, value, self.turn.services.now()))
        _mark_changed(self.turn, name)

    def set_files(self, name: str, files: Sequence[TicketMedia]) -> None:
        self.files[name] = list(files)
        self.turn.records.append(
            TicketMediaSet(self.id, name, tuple(files), self.turn.services.now())
        )
        _mark_changed(self.turn, name)


def _mark_changed(turn: Turn, name: str) -> None:
    """Which answers a revision of a submitted ticket changed, for the staff's notice."""
    if turn.state.data.get("revising"):
        changed = turn.state.data.setdefault("changed", [])
        if name not in changed:
            changed.append(name)


def open_ticket(turn: Turn, form: Form) -> Draft:
    """A new draft of this kind for the chat, with the form's fixed answers."""
    now = turn.services.now()
    ticket_id = new_ticket_id(form.kind)
    turn.records.append(TicketOpened(ticket_id, form.kind, now))
    ticket = Ticket(ticket_id, turn.key, form.kind, TicketStatus.DRAFT, now, now)
    draft = Draft(turn, ticket)
    for name, value in form.fixed.items():
        draft.answer(name, value)
    return draft


def enter(turn: Turn, draft: Draft, revising: bool = False) -> None:
    """Put the chat in the form for this ticket."""
    turn.state.reset()
    turn.state.flow = FLOW
    turn.state.data["ticket"] = draft.id
    if revising:
        turn.state.data["revising"] = True


def next_question(form: Form, draft: Draft, editing: str | None) -> Question | None:
    if editing is not None and (question := form.question(editing)) is not None:
        return question
    for question in form.asked(draft.answers):
        if question.name not in draft.answers:
            return question
    return None


async def advance(turn: Turn, form: Form, draft: Draft) -> None:
    """Ask the next question, or show the review when everything is answered."""
    question = next_question(form, draft, turn.state.data.get("editing"))
    if question is None:
        await show_review(turn, form, draft)
        return
    turn.state.step = ASKING
    turn.state.data["question"] = question.name
    ask(turn, form, draft, question)


def form_text(turn: Turn, text: str) -> Markup:
    """A form's own text (a prompt, a check, a file wanted) as the customer reads it:
    translated, with the company's `{placeholders}` filled. Asking a question and
    rewriting its message after the answer both come here, so neither shows `{name}`."""
    # The translation is ours and fill_placeholders escapes the values it puts in.
    return Markup(fill_placeholders(turn._(text), turn.services.contacts))  # noqa: S704


def ask(turn: Turn, form: Form, draft: Draft, question: Question) -> None:
    _ = turn._
    rows: list[list[Button]] = []
    text = form_text(turn, question.prompt)
    match question.ask:
        case Ask.CHOICE:
            rows += [
                [Button(_(c.label), f"form:answer:{question.name}:{c.value}")]
                for c in question.choices
            ]
        case Ask.FILES:
            replacing = turn.state.data.get("replacing") == question.name
            text = _files_prompt(turn, question, draft, replacing)
            files = draft.files.get(question.name, [])
            if files and question.files is not None and not question.files.slots:
                rows.append([Button(_("✅ Done"), f"form:done:{question.name}")])
        case Ask.CHECKS:
            text, check_rows = _check_prompt(turn, question, draft)
            rows += check_rows
    if question.skip is not None:
        rows.append([Button(_(question.skip), f"form:skip:{question.name}")])
    if turn.state.data.get("editing"):
        rows.append([Button(_("↩️ Back to the review"), "form:review")])
    turn.say(text, *rows)


def _files_prompt(turn: Turn, question: Question, draft: Draft, replacing: bool) -> Markup:
    _ = turn._
    spec = question.files
    assert spec is not None
    have = len(draft.files.get(question.name, []))
    prompt = form_text(turn, question.prompt)
    if replacing:
        return prompt + "\n\n" + _("The new files replace the ones you sent before.")
    if spec.slots:
        if have >= len(spec.slots):
            have = 0
        if have == 0:
            return prompt
        return _("Thanks. Now {wanted}.").format(wanted=form_text(turn, spec.slots[have]))
    if have == 0:
        return prompt
    return _(
        "Got {count} so far. Send more (up to {most} in all), or press ✅ Done when that is all."
    ).format(count=have, most=spec.at_most)


def _check_prompt(
    turn: Turn, question: Question, draft: Draft
) -> tuple[Markup, list[list[Button]]]:
    _ = turn._
    assert question.checks is not None
    checks = question.checks(draft.answers)
    index = min(turn.state.data.get("check", 0), len(checks) - 1)
    turn.state.data["check"] = index
    lines = []
    if index == 0:
        lines += [form_text(turn, question.prompt), Markup()]
    lines.append(_check_line(turn, checks, index))
    rows = [
        [Button(_("✅ Done, still not working"), f"form:check:{index}:done")],
        [Button(_("🎉 That fixed it"), f"form:check:{index}:fixed")],
    ]
    return Markup("\n").join(lines), rows


def _check_line(turn: Turn, checks: tuple[str, ...], index: int) -> Markup:
    return turn._("<b>Check {number} of {total}</b>: {check}").format(
        number=index + 1, total=len(checks), check=form_text(turn, checks[index])
    )


async def on_message(turn: Turn, form: Form, draft: Draft) -> None:
    """A message while the chat is in a form: the answer to the question asked."""
    if turn.state.step == REVIEWING:
        await show_review(turn, form, draft, nudge=True)
        return
    if turn.state.step == CONFIRMING:
        turn.say(turn._("Please answer with the buttons above: is the order of the files right?"))
        return
    question = form.question(turn.state.data.get("question", ""))
    if question is None:
        await advance(turn, form, draft)
        return
    if await _take_answer(turn, form, draft, question):
        await answered(turn, form, draft, question)


async def answered(turn: Turn, form: Form, draft: Draft, question: Question) -> None:
    """The question has its answer: run its follow-up, then move on."""
    turn.state.data.pop("check", None)
    if turn.state.data.get("editing") == question.name:
        del turn.state.data["editing"]
    if question.after is not None and not await question.after(turn, draft):
        return
    await advance(turn, form, draft)


async def _take_answer(turn: Turn, form: Form, draft: Draft, question: Question) -> bool:
    """Store what the message gives for the question; False (after a re-ask) if unusable."""
    _ = turn._
    incoming = turn.incoming
    text = (incoming.text or "").strip()
    match question.ask:
        case Ask.FILES:
            return _take_files(turn, form, draft, question)
        case Ask.CHECKS:
            turn.say(_("Please press one of the buttons above once you have tried it."))
            return False
        case Ask.CHOICE if not incoming.media:
            choice = _match_choice(_, question, text)
            if choice is None:
                turn.say(_("Please choose one of these:"), *_choice_rows(_, question))
                return False
            draft.answer(question.name, choice.value)
            return True
    if incoming.media:
        if question.photo_instead and _kind_of(incoming.media[0]) is Accept.IMAGE:
            draft.set_files(question.name, [_ticket_media(incoming.media[0])])
            draft.answer(question.name, "photo")
            return True
        turn.say(_wrong_input_text(_, incoming.media[0], question))
        ask(turn, form, draft, question)
        return False
    if len(text) > question.max_chars:
        turn.say(
            _("That is longer than I can keep here ({limit} characters at most). ").format(
                limit=question.max_chars
            )
            + _("Please shorten it.")
        )
        return False
    value = question.parse(text) if text else None
    if value is None:
        turn.say(form_text(turn, question.invalid))
        return False
    if question.photo_instead:
        draft.set_files(question.name, [])
    draft.answer(question.name, value)
    return True


def _match_choice(_: Translate, question: Question, text: str) -> Choice | None:
    wanted = text.casefold().strip(" .!")
    for number, choice in enumerate(question.choices, start=1):
        label = _(choice.label).casefold()
        if wanted in (str(number), choice.value.casefold()) or wanted == _strip_emoji(label):
            return choice
    return None


def _strip_emoji(label: str) -> str:
    return re.sub(r"^[^\w]+", "", label).strip()


def _choice_rows(_: Translate, question: Question) -> list[list[Button]]:
    return [
        [Button(_(c.label), f"form:answer:{question.name}:{c.value}")] for c in question.choices
    ]


def _kind_of(media: Media) -> Accept | None:
    """Whether a file is an image or a video, however it was sent (photo, or as a file)."""
    mime = media.mime or ""
    if media.kind is MediaKind.PHOTO or (
        media.kind is MediaKind.DOCUMENT and mime.startswith("image/")
    ):
        return Accept.IMAGE
    if media.kind is MediaKind.VIDEO or (
        media.kind is MediaKind.DOCUMENT and mime.startswith("video/")
    ):
        return Accept.VIDEO
    return None


def _ticket_media(media: Media) -> TicketMedia:
    return TicketMedia(
        kind=media.kind.value,
        file_ref=media.file_ref,
        size=media.size,
        mime=media.mime,
        file_name=media.file_name,
    )


def _what_it_is(_: Translate, media: Media) -> Markup:
    mime = media.mime or ""
    if mime == "application/pdf":
        return _("a PDF document")
    return {
        MediaKind.PHOTO: _("a photo"),
        MediaKind.VIDEO: _("a video"),
        MediaKind.DOCUMENT: _("a document"),
        MediaKind.VOICE: _("a voice message"),
        MediaKind.AUDIO: _("an audio file"),
        MediaKind.STICKER: _("a sticker"),
        MediaKind.LOCATION: _("a location"),
        MediaKind.CONTACT: _("a contact"),
    }.get(media.kind, _("something I cannot use here"))


def _wanted(_: Translate, question: Question) -> Markup:
    spec = question.files
    if question.ask in (Ask.CHOICE, Ask.CHECKS):
        return _("an answer with the buttons")
    if spec is None:
        return _("a typed answer")
    if spec.accepts == {Accept.VIDEO}:
        return _("a video")
    if spec.accepts == {Accept.IMAGE}:
        return _("a photo or screenshot")
    return _("photos or videos")


def _wrong_input_text(_: Translate, media: Media, question: Question) -> Markup:
    what = _what_it_is(_, media)
    return _("That is {what}, but here I need {wanted}. What you sent before is kept.").format(
        what=what, wanted=_wanted(_, question)
    )


def _take_files(turn: Turn, form: Form, draft: Draft, question: Question) -> bool:
    """Files for a files question; an album fills the wanted files in order, spilling into
    the next files questions, and is confirmed when it filled more than one."""
    _ = turn._
    spec = question.files
    assert spec is not None
    incoming = turn.incoming
    text = (incoming.text or "").strip()
    if not incoming.media:
        link = _LINK.search(text)
        if spec.link_instead and link:
            draft.set_files(question.name, [TicketMedia(kind="link", link=link.group(0))])
            draft.answer(question.name, "link")
            return True
        turn.say(
            _("I need {wanted} here, sent as a file rather than text.").format(
                wanted=_wanted(_, question)
            )
            + (" " + _("A link to the video works too.") if spec.link_instead else "")
        )
        return False
    usable: list[Media] = []
    problems: list[Markup] = []
    limit = turn.services.file_size_limit(incoming.channel)
    for media in incoming.media:
        kind = _kind_of(media)
        if kind is None or kind not in spec.accepts:
            problems.append(_wrong_input_text(_, media, question))
        elif limit is not None and media.size is not None and media.size > limit:
            problems.append(_too_big_text(_, media, limit, spec))
        else:
            usable.append(media)
    for problem in dict.fromkeys(problems):
        turn.say(problem)
    if not usable:
        return False
    placed = _place(form, draft, question, usable)
    if len(placed) > 1 and any(_slots_of(form, name) for name, _position in placed):
        turn.state.step = CONFIRMING
        turn.state.data["placed"] = [list(item) for item in placed]
        _ask_order(turn, form, draft, placed)
        return False
    return _settle(turn, form, draft, question)


def _too_big_text(_: Translate, media: Media, limit: int, spec: Files) -> Markup:
    size_mb = (media.size or 0) / (1024 * 1024)
    text = _("This file is {size:.0f} MB; the bot can receive files up to {limit:.0f} MB.").format(
        size=size_mb, limit=limit / (1024 * 1024)
    )
    if spec.link_instead:
        return (
            text
            + " "
            + _(
                "Please upload the video to a file-sharing service (Google Drive, Dropbox, "
                "YouTube as unlisted) and send the link here, or send a shorter clip."
            )
        )
    return text + " " + _("Please send a smaller one (a photo rather than a file, say).")


def _slots_of(form: Form, name: str) -> tuple[str, ...]:
    question = form.question(name)
    return question.files.slots if question and question.files else ()


def _place(
    form: Form, draft: Draft, question: Question, media: list[Media]
) -> list[tuple[str, int]]:
    """Put the files in the free places, this question's first: (question, position) each."""
    placed: list[tuple[str, int]] = []
    targets = _following_file_questions(form, draft, question)
    replacing = draft.turn.state.data.pop("replacing", None) == question.name
    for target in targets:
        spec = target.files
        assert spec is not None
        files = [] if replacing and target is question else list(draft.files.get(target.name, []))
        capacity = len(spec.slots) if spec.slots else spec.at_most
        while media and len(files) < capacity and _kind_of(media[0]) in spec.accepts:
            placed.append((target.name, len(files)))
            files.append(_ticket_media(media.pop(0)))
        if files != draft.files.get(target.name, []):
            draft.set_files(target.name, files)
        if not media or not spec.slots:
            break
    if media:
        draft.turn.say(
            draft.turn._(
                "I kept the first {kept}; the other {extra} were more than needed."
            ).format(kept=len(placed), extra=len(media))
        )
    return placed


def _following_file_questions(form: Form, draft: Draft, question: Question) -> list[Question]:
    """This files question and the unanswered files questions right after it."""
    asked = form.asked(draft.answers)
    start = asked.index(question) if question in asked else 0
    run = [question]
    for later in asked[start + 1 :]:
        if later.ask is not Ask.FILES or later.name in draft.answers:
            break
        run.append(later)
    return run


def _ask_order(turn: Turn, form: Form, draft: Draft, placed: list[tuple[str, int]]) -> None:
    _ = turn._
    ordinals = [_("1st"), _("2nd"), _("3rd")]
    lines = [_("I got {count} files and took them in the order sent:").format(count=len(placed))]
    for index, (name, position) in enumerate(placed):
        label = _place_label(turn, form, name, position)
        ordinal = ordinals[index] if index < len(ordinals) else f"{index + 1}."
        lines.append(Markup("• {} → {}").format(ordinal, label))
    lines.append(_("Is that right?"))
    rows = [[Button(_("✅ Yes, that's right"), "form:order:ok")]]
    if len(placed) == 2:
        rows.append([Button(_("🔁 Swap them"), "form:order:swap")])
    rows.append([Button(_("📤 I'll send them one at a time"), "form:order:again")])
    turn.say(Markup("\n").join(lines), *rows)


def _place_label(turn: Turn, form: Form, name: str, position: int) -> Markup:
    question = form.question(name)
    assert question is not None
    assert question.files is not None
    if question.files.slots:
        return form_text(turn, question.files.slots[position])
    return turn._(question.label)


def _settle(turn: Turn, form: Form, draft: Draft, question: Question) -> bool:
    """Mark the files questions that now have all their files as answered; True when
    `question` is, so the form moves on (else it asks for the next file)."""
    for target in _following_file_questions(form, draft, question):
        spec = target.files
        assert spec is not None
        count = len(draft.files.get(target.name, []))
        full = count >= (len(spec.slots) if spec.slots else spec.at_most)
        if full and target is not question:
            draft.answer(target.name, str(count))
    spec = question.files
    assert spec is not None
    count = len(draft.files.get(question.name, []))
    if count >= (len(spec.slots) if spec.slots else spec.at_most):
        draft.answer(question.name, str(count))
        return True
    if question.name in draft.answers and not spec.slots:
        # Replacing the files of an answered question: keep the count current.
        draft.answer(question.name, str(count))
    turn.state.step = ASKING
    ask(turn, form, draft, question)
    return False


async def on_button(turn: Turn, form: Form, draft: Draft, args: list[str]) -> None:
    """`form:<action>:...`: buttons of the question asked and of the review."""
    asking = turn.state.data.get("question")
    step = turn.state.step
    match args:
        case ["answer", name, value] if step == ASKING and name == asking:
            question = form.question(name)
            if question is None or value not in {c.value for c in question.choices}:
                await _stale(turn, form, draft)
                return
            chosen = _choice_label(turn._, question, value)
            turn.replace(Markup("{}\n\n<b>{}</b>").format(form_text(turn, question.prompt), chosen))
            draft.answer(name, value)
            await answered(turn, form, draft, question)
        case ["skip", name] if step == ASKING and name == asking:
            question = form.question(name)
            if question is None or question.skip is None:
                await _stale(turn, form, draft)
                return
            if question.ask is Ask.FILES:
                draft.set_files(name, [])
            draft.answer(name, SKIPPED)
            await answered(turn, form, draft, question)
        case ["done", name] if step == ASKING and name == asking:
            question = form.question(name)
            files = draft.files.get(name, [])
            if question is None or not files:
                await _stale(turn, form, draft)
                return
            draft.answer(name, str(len(files)))
            await answered(turn, form, draft, question)
        case ["check", index, outcome] if step == ASKING and index.isdigit():
            await _check_done(turn, form, draft, int(index), outcome)
        case ["order", choice] if step == CONFIRMING:
            await _confirm_order(turn, form, draft, choice)
        case ["edit", name] if step == REVIEWING:
            question = form.question(name)
            if question not in form.asked(draft.answers) or not question or not question.editable:
                await _stale(turn, form, draft)
                return
            turn.state.data["editing"] = name
            if question.ask is Ask.FILES:
                # The new files replace the old ones, which stay until the first arrives.
                turn.state.data["replacing"] = name
            await advance(turn, form, draft)
        case ["review"] if step == ASKING:
            await _back_to_review(turn, form, draft)
        case _:
            await _stale(turn, form, draft)


async def _back_to_review(turn: Turn, form: Form, draft: Draft) -> None:
    """Leave an edit unchanged; a files question left half replaced is asked again."""
    editing = turn.state.data.pop("editing", None)
    turn.state.data.pop("replacing", None)
    question = form.question(editing or "")
    spec = question.files if question else None
    if (
        question
        and spec
        and spec.slots
        and len(draft.files.get(question.name, [])) < len(spec.slots)
    ):
        draft.answer(question.name, None)
    await advance(turn, form, draft)


def _choice_label(_: Translate, question: Question, value: str) -> Markup:
    """The label of the choice stored as `value`; a value no choice has any more (an old
    ticket) is shown as the text it is."""
    label = next((c.label for c in question.choices if c.value == value), None)
    return escape(value) if label is None else _(label)


async def _stale(turn: Turn, form: Form, draft: Draft) -> None:
    """A button from an earlier question (a double tap, an old message): repeat where we are."""
    turn.notice = turn._("That button is from an earlier step.")
    if turn.state.step == REVIEWING:
        await show_review(turn, form, draft)
        return
    if turn.state.step == CONFIRMING:
        _ask_order(turn, form, draft, _placed(turn))
        return
    await advance(turn, form, draft)


async def _check_done(turn: Turn, form: Form, draft: Draft, index: int, outcome: str) -> None:
    _ = turn._
    question = form.question(turn.state.data.get("question", ""))
    if question is None or question.checks is None or index != turn.state.data.get("check", 0):
        await _stale(turn, form, draft)
        return
    checks = question.checks(draft.answers)
    if outcome == "fixed":
        turn.replace(_("🎉 That fixed it."))
        turn.records.append(
            TicketStatusSet(
                draft.id,
                TicketStatus.CANCELLED,
                "customer",
                turn.services.now(),
                f"solved by check {index + 1}",
            )
        )
        turn.state.reset()
        turn.say(
            _(
                "Great, I am glad it works again! No ticket is needed. If the problem comes "
                "back, open a repair ticket from the menu at any time."
            ),
            [menu_button(turn)],
        )
        return
    if outcome != "done":
        await _stale(turn, form, draft)
        return
    turn.replace(_check_line(turn, checks, index) + "\n✅ " + _("Done, still not working"))
    if index + 1 < len(checks):
        turn.state.data["check"] = index + 1
        ask(turn, form, draft, question)
        return
    draft.answer(question.name, YES)
    await answered(turn, form, draft, question)


def _placed(turn: Turn) -> list[tuple[str, int]]:
    """Where the files of the album being confirmed went: (question, position) each."""
    return [(str(name), int(position)) for name, position in turn.state.data.get("placed", [])]


async def _confirm_order(turn: Turn, form: Form, draft: Draft, choice: str) -> None:
    placed = _placed(turn)
    question = form.question(turn.state.data.get("question", ""))
    if question is None or not placed or choice not in ("ok", "swap", "again"):
        await _stale(turn, form, draft)
        return
    del turn.state.data["placed"]
    match choice:
        case "swap" if len(placed) == 2:
            (first_name, first_at), (second_name, second_at) = placed
            first = draft.files[first_name][first_at]
            second = draft.files[second_name][second_at]
            _put(draft, first_name, first_at, second)
            _put(draft, second_name, second_at, first)
            turn.replace(turn._("Swapped."))
        case "again":
            for name in dict.fromkeys(name for name, _position in placed):
                kept = [
                    file
                    for position, file in enumerate(draft.files.get(name, []))
                    if (name, position) not in placed
                ]
                draft.set_files(name, kept)
            turn.replace(turn._("No problem: send them one at a time, as I ask."))
        case _:
            turn.replace(turn._("👍 Thanks."))
    turn.state.step = ASKING
    if _settle(turn, form, draft, question):
        await answered(turn, form, draft, question)


def _put(draft: Draft, name: str, position: int, file: TicketMedia) -> None:
    files = list(draft.files[name])
    files[position] = file
    draft.set_files(name, files)


def summary_lines(
    _: Translate,
    form: Form,
    answers: Answers,
    files: Mapping[str, Sequence[TicketMedia]],
    full: bool = False,
) -> list[Markup]:
    """Each answer as "<label>: value", files counted (with links), in the form's order."""
    lines = []
    for question in form.asked(answers):
        value = answers.get(question.name)
        if value is None:
            continue
        shown = _shown_value(_, question, value, files.get(question.name, ()), full)
        lines.append(Markup("<b>{}</b>: {}").format(_(question.label), shown))
    return lines


def _shown_value(
    _: Translate, question: Question, value: str, files: Sequence[TicketMedia], full: bool
) -> Markup:
    if value == SKIPPED:
        return _("not given")
    match question.ask:
        case Ask.CHOICE:
            return _choice_label(_, question, value)
        case Ask.CHECKS:
            return _("all done, still not working")
        case Ask.FILES:
            links = [f.link for f in files if f.link]
            if links:
                return Markup(", ").join(links)
            return _("{count} file(s)").format(count=len(files))
    if question.photo_instead and value == "photo":
        return _("photo of the sticker")
    if not full and len(value) > REVIEW_VALUE_CHARS:
        value = value[: REVIEW_VALUE_CHARS - 1] + "…"
    return escape(value)


async def show_review(turn: Turn, form: Form, draft: Draft, nudge: bool = False) -> None:
    """Everything collected, what is covered and what the customer pays, with an edit
    button per answer and Submit."""
    _ = turn._
    revising = bool(turn.state.data.get("revising"))
    turn.state.step = REVIEWING
    turn.state.data.pop("question", None)
    lines: list[str] = []
    if nudge:
        lines += [_("Please use the buttons below: edit an answer, or submit."), ""]
    lines += [_("📋 <b>{title}: please check</b>").format(title=_(form.title)), ""]
    lines += summary_lines(_, form, draft.answers, draft.files)
    lines += ["", *await form.coverage(turn.services, turn.key, draft.answers, turn.state.language)]
    edits = [
        Button(_("✏️ {label}").format(label=_(q.label)), f"form:edit:{q.name}")
        for q in form.asked(draft.answers)
        if q.editable and q.name in draft.answers
    ]
    rows: list[list[Button]] = [edits[i : i + 2] for i in range(0, len(edits), 2)]
    if revising:
        rows.append([Button(_("📨 Send the changes"), f"ticket:submit:{draft.id}")])
        rows.append([Button(_("↩️ Keep it as it was sent"), f"ticket:show:{draft.id}")])
    else:
        rows.append([Button(_("📨 Submit"), f"ticket:submit:{draft.id}")])
        rows.append([Button(_("🗑 Discard this ticket"), f"ticket:discard:{draft.id}")])
    turn.say(Markup("\n").join(lines), *rows)
