"""Commitments in a transcript: who promised what, by when, quoted verbatim.

Recognised shapes, each a sentence (after leading fillers like "Sure," or "Okay."):
first person ("I'll …", "I will …", "I'm going to …", "let me …", "I can …" weakly),
the speaker's team ("we'll …", "we will …"), requests ("can/could/would you …",
"<Name>, please …", "I need you to …") owned by the addressee, third person about an
attendee ("Mindy will …") and "action item (for X): …". Questions that are not requests,
conditionals ("if …, we'll …"), idioms ("I'll be honest"), pronoun-only promises
("I'll do that") and small talk never become items.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import date

from rapidfuzz import fuzz

from sandbox.rules import assignments as hand
from sandbox.rules.dates import find_date
from sandbox.rules.disfluency import tidy
from sandbox.rules.prompt_view import Line, MeetingView, Person
from sandbox.rules.sentences import Sentence, split_sentences

MAX_TITLE_WORDS = 12
MIN_CONFIDENCE = 0.5  # below this an item is more likely wrong than right: leave it out

_LEAD = re.compile(
    r"^(?:(?:ok(?:ay)?|so|and|also|great|sure|yes|yeah|yep|yup|right|perfect|alright|all right"
    r"|absolutely|understood|of course|no problem|got it|fine|then|well|oh|cool|sounds good"
    r"|thanks|thank you|good|totally|agreed|noted|in that case|on our side|from our side"
    r"|on my side|for sure|definitely|honestly|anyway|now|first|second|lastly|finally)"
    r"[,.!:;]?\s+)+",
    re.IGNORECASE,
)
_VOCATIVE_HEAD = re.compile(
    r"^(?:the\s+)?(?:(?P<name>[A-Z][a-z]+(?: (?:[A-Z][a-z]+|\d))?|[A-Z]{1,5}),\s+"
    r"|(?P<letter>[A-Z])\s+(?=(?:can|could|would|will) you\b))"
)
_VOCATIVE_TAIL = re.compile(
    r",\s+(?:the\s+)?(?P<name>[A-Z][a-z]+(?: (?:[A-Z][a-z]+|\d))?|[A-Z]{1,5})\s*[?.!]*$"
)
_SELF = re.compile(
    r"^(?P<modal>i'll|i will|i'm going to|i am going to|i'm gonna|let me|i can|i'll go ahead and"
    r"|i'll make sure to|i'll make sure i|i promise to|i commit to)\s+(?P<pred>.+)$",
    re.IGNORECASE,
)
_WE = re.compile(
    r"^(?P<modal>we'll|we will|we're going to|we are going to|we're gonna)\s+(?P<pred>.+)$",
    re.IGNORECASE,
)
_REQUEST = re.compile(
    r"^(?:(?:can|could|would|will)\s+(?:you|your team|you guys|you all|you both|y'all)"
    r"(?:\s+please)?|please|i need you to|i'd like you to|i want you to|i'd ask you to"
    r"|you need to|make sure you)\s+(?P<pred>.+)$",
    re.IGNORECASE,
)
_THIRD = re.compile(
    r"^(?P<name>[A-Z][a-z]+(?: [A-Z][a-z]+)?)(?: will| is going to|'ll|'s going to)\s+(?P<pred>.+)$"
)
_ACTION = re.compile(
    r"\baction items?(?:\s+for\s+(?P<for>[A-Za-z]+(?: [A-Z][a-z]+)?))?\s*[:,-]\s*(?P<rest>.+)$",
    re.IGNORECASE,
)
_NAMED_TO = re.compile(r"^(?P<name>[A-Z][a-z]+(?: [A-Z][a-z]+)?) (?:to|will) (?P<pred>.+)$")
_DELEGATE = re.compile(r"^have (?P<name>[A-Z][a-z]+) (?P<pred>.+)$")

# verbs after a modal that never make a task: idioms, states, small talk
_NOT_TASKS = {
    "be", "need", "want", "say", "admit", "guess", "bet", "think", "see", "keep", "miss", "hop",
    "jump", "head", "leave", "let", "hate", "love", "like", "enjoy", "wait", "watch", "grab",
    "probably", "never", "not", "won't", "definitely not", "tell", "hear", "remember", "hope",
    "figure", "manage", "survive", "drop", "sleep", "eat", "go", "stay", "pass", "defer",
    "believe", "wish", "bring", "try", "meet", "come", "continue", "start", "begin", "move on",
}  # fmt: skip
# things done in the room, running the meeting, and decisions: said as "I'll …", not tasks
_IN_ROOM = re.compile(
    r"^(?:give (?:it|this|that|them|him|her) (?:a |an )?(?:zero|one|two|three|four|five|six"
    r"|seven|eight|nine|ten|\d+(?:\.\d)?)(?:\s+(?:out of \w+|overall|for \w+))?\s*(?:$|,)"
    r"|(?:rate|score|grade|vote on) (?:it|this|that|them)\b"
    r"|(?:open|close|start|begin|end|adjourn|kick off|wrap up|chair)\b.{0,30}\b(?:meeting|call"
    r"|session|sync|discussion|stand-?up|this)\b"
    r"|(?:share|stop sharing) (?:my|the) screen"
    r"|put (?:it|them|this|that|these|those)(?: \w+)? (?:up )?on (?:the|my) (?:screen|whiteboard"
    r"|board|slide|table|wall|projector)\b)",
    re.IGNORECASE,
)
_AGENDA = re.compile(
    r"^(?:(?:come|get|go|turn|return|circle|move on) (?:back )?to (?:that|it|this|those)\b"
    r"|(?:come|get|go|talk|discuss|look|cover|go through|revisit|circle|deal|pick|hear|touch"
    r"|spend|do)\b.*\b(?:later|next time|at the next one|in the next meeting|at the next meeting"
    r"|after the break|at the end)\b)",
    re.IGNORECASE,
)
_DISCUSS = {"talk", "discuss", "look", "cover", "go", "revisit", "hear", "touch", "spend", "get"}
# shown, drawn or read out during the meeting itself, unless a later time is said
_SHOWN = {
    "show", "draw", "present", "read", "explain", "demonstrate", "walk", "click",
    "scroll", "zoom", "sketch", "summarise", "summarize", "recap", "repeat", "clarify",
}  # fmt: skip
_LATER = re.compile(
    r"\b(?:tomorrow|tonight|next|later|after (?:this|the (?:call|meeting))|by \w+|on (?:mon|tues"
    r"|wednes|thurs|fri|satur|sun)day|this (?:week|afternoon|evening)|email|send|offline)\b",
    re.IGNORECASE,
)
_DECISION_VERBS = {
    "use", "go", "keep", "stick", "choose", "pick", "drop", "have", "move", "switch", "include",
    "adopt", "target", "make", "remove", "cut", "skip", "leave", "price", "aim", "opt", "stay",
    "pause", "stop", "hold", "freeze", "postpone", "cancel", "focus", "prioritize", "prioritise",
}  # fmt: skip
# "run the checker and send you the results": the second half hands back the first
_HAND_BACK = re.compile(
    r"^(?:send|share|circulate|forward|email|post|give)\s+(?:\w+\s+)?(?:the |my |our )?"
    r"(?:results?|findings|notes|summary|numbers|output|outcome|answers?|feedback)$",
    re.IGNORECASE,
)
_TAG_QUESTION = re.compile(
    r",?\s+(?:right|yeah|okay|ok|correct|yes|no|isn't it|won't you|ok then|agreed)\s*\?\s*$",
    re.IGNORECASE,
)
_LET_ME_CHECK = re.compile(
    r"^let me\s+(?:just\s+)?(?:check|see|think|ask around|look|find out|double-check)\b",
    re.IGNORECASE,
)
_PLAN = re.compile(
    r"^(?:today|this morning|this afternoon|tomorrow|next|after (?:this|that|standup)|then)"
    r",?\s+i'm\s+(?:going to\s+|gonna\s+)?(?P<pred>\w+ing\b.+)$",
    re.IGNORECASE,
)
_HEDGE = re.compile(
    r"\b(?:i think|i guess|maybe|probably|hopefully|might|possibly|perhaps|no promises"
    r"|if i can|if we can|if possible|i'll see|we'll see)\b",
    re.IGNORECASE,
)
# request verbs that ask for something during the call, not a task after it
_IN_CALL = {
    "walk", "tell", "explain", "describe", "repeat", "clarify", "elaborate", "talk", "say",
    "hear", "see", "remind", "give", "go", "speak", "share your screen", "help", "unmute",
    "mute", "imagine", "believe", "hold", "wait", "step", "scroll", "zoom", "click", "draw",
    "stop", "start", "introduce", "make it", "put it", "move", "read", "pull", "open", "switch",
    "turn", "raise", "scoot", "sit", "stand", "pass", "show", "spell", "rate", "score",
}  # fmt: skip
_TAKE_OK = re.compile(r"^take (?:care of|a look|ownership|the lead|point|the action|over)\b")
_TALK_OK = re.compile(r"^(?:talk|speak) (?:to|with) (?!you\b)")
_SMALL_TALK = re.compile(
    r"\b(?:vacation|coffee|lunch|dinner|beers?|drinks|restaurants?|brisket|barbecue|bbq"
    r"|soccer|football|baseball|movie|weather|birthday|kids|pub|quiz|golf|gym|recipe"
    r"|holiday party|bleachers|snacks?|pizza|donuts?)\b",
    re.IGNORECASE,
)
_PRONOUN_ONLY = re.compile(
    r"^\w+(?:\s+(?:over|up|out|back|off|through|on|in|along|forward|at|into|about|with|to))?"
    r"\s+(?:it|that|this|them|so|those|these|one|the same)"
    r"(?:\s+(?:over|up|out|back|off|through|on|in|along|forward|together|for \w+"
    r"|to (?:me|us|him|her|them|you)))?$",
    re.IGNORECASE,
)
_CONDITION_FIRST = re.compile(r"^(?:if|unless|when|once|whenever|in case)\b", re.IGNORECASE)
_CONDITION_INSIDE = re.compile(r"\b(?:if|unless|in case)\b", re.IGNORECASE)
_CHECKING_VERBS = re.compile(
    r"^(?:check|see|confirm|verify|find out|ask|look into|figure out|investigate|test)\b",
    re.IGNORECASE,
)
_ADVERBS = re.compile(
    r"^(?:also|just|quickly|personally|definitely|actually|certainly|gladly|then|still|first"
    r"|go ahead and|make sure to|make sure that (?:i|we)|make sure (?:i|we)|try to|try and"
    r"|happily|absolutely|now)\s+",
    re.IGNORECASE,
)
_TRAILING = re.compile(
    r"(?:[\s,]+(?:as well|too|then|also|for you|for us|please|on it|on that|on this|asap"
    r"|real quick|quickly|first thing|again|myself|ourselves|personally|right away"
    r"|immediately|together|after this|after the call|after the meeting|after standup"
    r"|this morning|this afternoon|tonight|today|pacific|eastern|central|mountain|utc|gmt|cet"
    r"|[a-z]{2}t|time"
    r"|morning|afternoon|evening|if possible|when i can))+[\s,.!?]*$",
    re.IGNORECASE,
)
_CUTS = re.compile(
    r"\s+(?:so that|so|because|once|after|before|while|since|unless|but|which|when|as soon as"
    r"|given that|now that|-|–|—)\s+|,\s+|;\s+|:\s+"
)
_THEN_VERB = frozenset(
    [
        "send",
        "share",
        "set",
        "schedule",
        "follow",
        "loop",
        "draft",
        "review",
        "update",
        "fix",
        "investigate",
        "look",
        "write",
        "prepare",
        "book",
        "reach",
        "confirm",
        "check",
        "get",
        "put",
        "create",
        "file",
        "ship",
        "deploy",
        "run",
        "add",
        "talk",
        "sync",
        "circle",
        "email",
        "call",
        "ping",
        "provide",
        "finalize",
        "open",
        "escalate",
        "coordinate",
        "forward",
        "pull",
        "test",
        "migrate",
        "document",
        "own",
        "handle",
        "make",
        "give",
        "text",
        "ask",
        "include",
        "pair",
        "monitor",
        "backfill",
        "invite",
        "introduce",
        "organize",
        "arrange",
        "clean",
        "merge",
        "publish",
        "post",
        "submit",
        "sign",
        "order",
        "contact",
        "notify",
        "remind",
        "flag",
        "track",
        "train",
        "onboard",
        "demo",
        "present",
        "compile",
        "gather",
        "collect",
        "summarize",
        "circulate",
        "configure",
        "install",
        "enable",
        "upgrade",
        "benchmark",
        "audit",
        "approve",
        "verify",
        "validate",
        "research",
        "explore",
        "evaluate",
        "estimate",
        "plan",
        "hire",
        "interview",
        "recommend",
        "propose",
        "bring",
        "connect",
        "reply",
        "respond",
        "answer",
        "dig",
        "find",
        "rotate",
        "renew",
        "replace",
        "refresh",
        "reset",
        "restart",
        "patch",
        "rerun",
        "rebuild",
        "rewrite",
        "refactor",
        "rework",
        "redo",
    ]
)
_AND_VERB = re.compile(
    r"(?:,\s*|\s+)and (?:(?:i'll|i will|we'll|we will|then|also)\s+)?(?=(?:"
    + "|".join(sorted(_THEN_VERB))
    + r")\b)",
    re.IGNORECASE,
)
_HIGH = re.compile(
    r"\b(?:urgent|urgently|asap|as soon as possible|critical|top priority|high priority"
    r"|highest priority|blocker|blocking|immediately|p0|p1|right away)\b",
    re.IGNORECASE,
)
_LOW = re.compile(
    r"\b(?:no rush|low priority|when you get a chance|whenever you can|nice to have"
    r"|not urgent|no hurry|at some point)\b",
    re.IGNORECASE,
)
_AFFIRM = re.compile(
    r"^(?:yes|yeah|yep|yup|sure|of course|absolutely|will do|can do|no problem|on it|ok(?:ay)?"
    r"|got it|definitely|certainly|sounds good|happy to|i'll|i will|i can|we'll|we will|done"
    r"|consider it done|you got it|for sure|totally)\b",
    re.IGNORECASE,
)
_DECLINE = re.compile(
    r"^(?:no\b(?! problem)|nope|i can't|i cannot|we can't|not (?:really|sure|this)|unfortunately"
    r"|i won't|probably not)",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Commitment:
    """One action item as the rules model found it."""

    title: str
    owner: str | None
    owner_email: str | None
    due: date | None
    priority: str | None
    confidence: float
    evidence: str
    line: int
    kind: str  # self | we | request | third | action
    also: bool = False


def find_commitments(view: MeetingView) -> list[Commitment]:
    """Every commitment in the transcript, requests merged with their accepting replies."""
    found: list[Commitment] = []
    lines = view.lines
    for pos, line in enumerate(lines):
        previous = lines[pos - 1] if pos > 0 else None
        following = lines[pos + 1] if pos + 1 < len(lines) else None
        for sentence in split_sentences(line.text):
            found.extend(_from_sentence(view, sentence, line, previous, following))
    kept = _dedupe(_merge_replies(view, found))
    return [item for item in kept if item.confidence >= MIN_CONFIDENCE]


def _from_sentence(
    view: MeetingView,
    sentence: Sentence,
    line: Line,
    previous: Line | None,
    following: Line | None,
) -> list[Commitment]:
    text = tidy(sentence.text)
    tagged = _TAG_QUESTION.search(text)
    question = sentence.is_question and not tagged
    if tagged:
        text = text[: tagged.start()] + "."
    if _SMALL_TALK.search(text) or _CONDITION_FIRST.search(_strip_lead(text)):
        return []
    body = _strip_lead(text).rstrip(" .!")
    vocative = None
    head = _VOCATIVE_HEAD.match(body)
    if head and _is_name(view, head["name"] or head["letter"]):
        vocative, body = head["name"] or head["letter"], _strip_lead(body[head.end() :])
    tail = _VOCATIVE_TAIL.search(body)
    if tail and _is_name(view, tail["name"]):
        vocative, body = tail["name"], body[: tail.start()]
    body = body.rstrip(" ?.!")
    speaker = view.person(line.speaker)
    speaker_name = speaker.name if speaker else line.speaker
    listener = vocative or _other_speaker(view, line, previous, following)

    action = _ACTION.search(body)
    if action:
        return _from_action_item(view, sentence, line, action, listener)
    handed = _handed_out(view, sentence, line, body, vocative, speaker_name, question)
    if handed is not None:
        return handed
    m = _REQUEST.match(body)
    if question and not m:
        return []
    # a question that asks for something, or a request to a named person (a bare
    # "please …" is handled below: its owner may be the previous speaker)
    if m and (question or vocative or not body.lower().startswith("please")):
        owner = vocative or _addressee(line, following)
        return _build(
            view,
            sentence,
            line,
            m["pred"],
            owner,
            "request",
            you=None,
            me=speaker_name,
            accepted=owner is not None,
        )
    if m and body.lower().startswith("please"):
        owner = _addressee(line, following) or (previous.speaker if previous else None)
        return _build(
            view,
            sentence,
            line,
            m["pred"],
            owner,
            "request",
            you=None,
            me=speaker_name,
            accepted=False,
        )
    results: list[Commitment] = []
    for clause in re.split(r",?\s+and (?=(?:i'll|i will|we'll|we will)\b)", body, flags=re.I):
        planned = _PLAN.match(clause)
        if planned:
            predicate = hand.base_verb(planned["pred"], _THEN_VERB)
            results += _build(view, sentence, line, predicate, line.speaker, "self",
                              you=listener, me=speaker_name, confidence=0.7)  # fmt: skip
            continue
        m = _SELF.match(clause)
        if m and _LET_ME_CHECK.match(clause):
            continue  # checked in the room more often than promised for later
        if m:
            weak = m["modal"].lower() == "i can"
            if weak and _CONDITION_INSIDE.search(clause):
                continue
            results += _build(
                view,
                sentence,
                line,
                m["pred"],
                line.speaker,
                "self",
                you=listener,
                me=speaker_name,
                weak=weak,
            )
            continue
        m = _WE.match(clause)
        if m:
            results += _build(
                view, sentence, line, m["pred"], line.speaker, "we", you=listener, me=speaker_name
            )
            continue
        m = _THIRD.match(clause)
        known = view.person(m["name"]) or view.canonical(m["name"]) if m else None
        if m and known and m["name"].lower() not in {"we", "i"}:
            results += _build(
                view, sentence, line, m["pred"], m["name"], "third", you=listener, me=speaker_name
            )
    return results


def _handed_out(
    view: MeetingView,
    sentence: Sentence,
    line: Line,
    body: str,
    vocative: str | None,
    speaker_name: str | None,
    question: bool,
) -> list[Commitment] | None:
    """Assignments, wishes, role subjects and group tasks; None when the shape is not one."""
    pos = next((k for k, other in enumerate(view.lines) if other is line), 0)
    ack = hand.acknowledger(view.lines, pos, line.speaker)
    owner = vocative or ack
    confident = 0.8 if ack and (vocative is None or _same(view, vocative, ack)) else 0.65

    def build(predicate: str, who: str | None, kind: str, confidence: float) -> list[Commitment]:
        return _build(view, sentence, line, predicate, who, kind, you=who, me=speaker_name,
                      confidence=confidence)  # fmt: skip

    m = hand.SECOND.match(body)
    if m and not question:
        if owner is None:
            return []
        predicate = hand.base_verb(m["pred"], _THEN_VERB)
        return build(predicate, owner, "assign", confident)
    m = hand.FOR_YOU.match(body) or (hand.NOUN_PHRASE.match(body) if vocative else None)
    named = m.groupdict().get("name") if m else None
    if named and _is_name(view, named):
        owner = named
    if m and owner is not None and len(m["np"].split()) <= 10:
        return build(f"work on {m['np']}", owner, "assign", confident)
    m = hand.WISH.match(body)
    if m:
        if owner is None:
            return []
        return build(f"prepare {m['np']}", owner, "assign", confident)
    m = hand.GROUP.match(body)
    if m and not question:
        taker, _ = hand.taker(view, pos, line.speaker)
        if taker is not None:
            return build(m["pred"], taker, "group", 0.75)
        # with nobody taking it up, only plain work is a task ("we need to send the
        # questionnaire"); "we need to keep it cheap" is a requirement, not a task
        verb = m["pred"].split(" ", 1)[0].lower()
        should = m[0].lower().startswith(("we should", "someone should", "somebody should"))
        if verb in _THEN_VERB and verb not in _DECISION_VERBS and not should:
            return build(m["pred"], None, "group", 0.55)
        return []
    m = hand.ROLE_SUBJECT.match(body)
    if m and m["role"].lower() not in {"we", "i", "you", "it", "that", "this", "they", "he",
                                       "she", "someone", "somebody"}:  # fmt: skip
        who = hand.role_owner(view, m["role"])
        if who is not None and not view.person(m["role"]):
            return build(m["pred"], who, "third", 0.75)
    return None


def _same(view: MeetingView, a: str | None, b: str | None) -> bool:
    if a is None or b is None:
        return False
    if a.lower() == b.lower():
        return True
    pa, pb = view.person(a), view.person(b)
    return pa is not None and pa == pb


def _from_action_item(
    view: MeetingView, sentence: Sentence, line: Line, m: re.Match[str], listener: str | None
) -> list[Commitment]:
    rest = m["rest"].strip()
    owner: str | None = m["for"]
    if owner and owner.lower() in {"me", "myself"}:
        owner = line.speaker
    elif owner and owner.lower() in {"you", "everyone", "all", "us", "the", "this", "that"}:
        owner = listener if owner.lower() == "you" else None
    named = _NAMED_TO.match(rest)
    if named and _is_name(view, named["name"]):
        owner, rest = named["name"], named["pred"]
    else:
        me = _SELF.match(rest) or _WE.match(rest)
        if me:
            owner, rest = line.speaker, me["pred"]
    speaker = view.person(line.speaker)
    return _build(
        view,
        sentence,
        line,
        rest,
        owner,
        "action",
        you=listener,
        me=speaker.name if speaker else line.speaker,
    )


def _build(
    view: MeetingView,
    sentence: Sentence,
    line: Line,
    predicate: str,
    owner: str | None,
    kind: str,
    *,
    you: str | None,
    me: str | None,
    accepted: bool = True,
    weak: bool = False,
    confidence: float | None = None,
) -> list[Commitment]:
    predicate = predicate.strip().rstrip(" ?.!")
    immediate = re.match(r"^just\b", predicate, re.IGNORECASE) and not _LATER.search(predicate)
    if immediate and kind in {"self", "we"}:
        return []  # "I'll just draw it": done now, in the room
    predicate = _ADVERBS.sub("", predicate)
    predicate = _ADVERBS.sub("", predicate)
    also = bool(re.match(r"^(?:also|too)\b", sentence.text, re.I)) or bool(
        re.search(r"\b(?:also|as well|too)\b", sentence.text, re.I)
    )
    if kind == "self" and _PRONOUN_ONLY.match(_strip_trailing(predicate.lower())):
        resolved = _antecedent(view, line, predicate)
        if resolved is not None:
            predicate, confidence = resolved, 0.7
    delegated = _DELEGATE.match(predicate)
    if delegated and _is_name(view, delegated["name"]):
        owner, predicate = delegated["name"], delegated["pred"]
        kind = "third"
    if not _is_task(predicate, kind):
        return []
    today = view.day
    out: list[Commitment] = []
    parts = _split_actions(predicate, today)
    whole_due = find_date(predicate, today) if today else None
    for part in parts:
        due = find_date(part, today) if today else None
        if due is None and len(parts) == 1:
            due = whole_due
        title = _title(part, today, you=_short(view, you), me=_short(view, me), kind=kind)
        if not title or _PRONOUN_ONLY.match(title) or (len(title.split()) < 2 and not due):
            continue
        person = view.person(owner) if owner else None
        score = confidence
        if score is None:
            score = {"self": 0.85, "action": 0.9, "we": 0.7, "third": 0.8}.get(kind, 0.85)
            if kind == "request" and not accepted:
                score = 0.45  # asked, never taken up: not a task yet
            if weak:
                score = 0.5
        if due is not None:
            score += 0.05
        if _HEDGE.search(tidy(sentence.text)):
            score -= 0.15
        out.append(
            Commitment(
                title=title,
                owner=(person.name if person else owner),
                owner_email=person.email if person else None,
                due=due.value if due else None,
                priority=_priority(sentence.text),
                confidence=round(min(score, 0.95), 2),
                evidence=sentence.text,
                line=line.index,
                kind=kind,
                also=also,
            )
        )
    return out


_OBJECT = re.compile(
    r"\b(?:" + "|".join(sorted(_THEN_VERB)) + r"|mail)\s+(?:\w+\s+)?(?P<np>(?:the|a|an|your|my|our"
    r"|these|those)\s+[\w-]+(?:\s+(?!around|to|for|by|on|with|before|after|out|over)[\w-]+){0,3})",
    re.IGNORECASE,
)


def _antecedent(view: MeetingView, line: Line, predicate: str) -> str | None:
    """'I'll mail them' after 'Should I send the slides around?': 'mail the slides'."""
    pos = next((k for k, other in enumerate(view.lines) if other is line), None)
    if pos is None:
        return None
    for earlier in reversed(view.lines[max(0, pos - 2) : pos]):
        found = list(_OBJECT.finditer(tidy(earlier.text)))
        if found:
            np = found[-1]["np"]
            return re.sub(r"\b(?:it|them|that|this|those|these)\b", np, predicate, count=1)
    return None


def _is_task(predicate: str, kind: str) -> bool:
    lowered = predicate.lower()
    verb = lowered.split(" ", 1)[0].strip(",.;:!?") if lowered else ""
    told = re.match(r"^(?:tell|remind|update) (?!you\b|him\b|her\b|them\b)[a-z]+", lowered)
    if told and verb in {"tell", "remind"} and re.search(r"^\w+ [A-Z]", predicate):
        return True
    if not verb or verb in _NOT_TASKS or lowered.startswith(("have to", "have a ", "have fun")):
        return False
    if _IN_ROOM.match(lowered) or _AGENDA.match(lowered):
        return False
    if kind in {"self", "we"} and verb in _SHOWN and not _LATER.search(lowered):
        return False
    if kind in {"self", "we"} and re.search(
        r"\b(?:for now|for the moment|for the time being)$", lowered
    ):
        return False
    if (
        kind == "we"
        and (verb in _DECISION_VERBS or verb in _DISCUSS)
        and not lowered.startswith(
            ("look into", "get back", "get you", "get them", "get him", "get her", "get it")
        )
    ):
        return False
    if kind == "we" and (
        verb not in _THEN_VERB or (verb == "put" and not re.search(r"\btogether\b", lowered))
    ):
        return False  # "we'll put the buttons on top": design talk, not work
    if verb == "have" and not re.match(
        r"^have (?:it|that|this|them|the \w+) (?:ready|live|done|to |over to |"
        r"finished|sent|over|back|fixed|deployed|shipped)",
        lowered,
    ):
        return False
    if verb == "take" and not _TAKE_OK.match(lowered):
        return False
    if verb in {"talk", "speak"} and not _TALK_OK.match(lowered):
        return False
    in_call = verb in _IN_CALL or lowered.startswith(("share your screen", "make it full"))
    if kind in {"request", "assign"} and in_call:
        return False
    if _CONDITION_INSIDE.search(lowered) and not _CHECKING_VERBS.match(lowered):
        return False
    return not _PRONOUN_ONLY.match(_strip_trailing(lowered))


def _split_actions(predicate: str, today: date | None) -> list[str]:
    parts: list[str] = []
    rest = predicate
    while True:
        m = _AND_VERB.search(rest)
        if not m:
            break
        head, tail = rest[: m.start()], rest[m.end() :]
        if len(head.split()) < 2:
            break
        first = _strip_trailing(_strip_dates(tail.split(",")[0], today))
        if _PRONOUN_ONLY.match(first) or _HAND_BACK.match(first):
            # "update the form and send it over": one task, the second half points back
            rest = head
            break
        parts.append(head)
        rest = tail
    parts.append(rest)
    return [p.strip() for p in parts if p.strip()]


def _strip_dates(text: str, today: date | None) -> str:
    if today is None:
        return text
    for _ in range(3):
        match = find_date(text, today)
        if match is None:
            break
        text = (text[: match.start] + " " + text[match.end :]).strip()
    return re.sub(r"\s{2,}", " ", text)


def _strip_trailing(text: str) -> str:
    previous = None
    while previous != text:
        previous = text
        text = _TRAILING.sub("", text).strip(" ,")
    return text


def _title(part: str, today: date | None, *, you: str | None, me: str | None, kind: str) -> str:
    text = _strip_dates(part, today)
    text = _strip_trailing(text)
    text = _ADVERBS.sub("", text)
    text = _pronouns(text, you=you, me=me, kind=kind)
    cut = _CUTS.search(text)
    while cut and len(text[: cut.start()].split()) >= 2:
        text = text[: cut.start()]
        cut = _CUTS.search(text)
    text = _strip_trailing(text)
    words = text.split()
    if len(words) > MAX_TITLE_WORDS:
        head = re.split(r"\s+(?:and|with|for|to|in|on|by)\s+", " ".join(words[:MAX_TITLE_WORDS]))
        words = (
            head[0] if len(head[0].split()) >= 3 else " ".join(words[:MAX_TITLE_WORDS])
        ).split()
    text = " ".join(words).strip(" ,;:-")
    return text[:1].upper() + text[1:] if text else ""


def _pronouns(text: str, *, you: str | None, me: str | None, kind: str) -> str:
    first_you, first_me = you, me  # already short: first names, or whole role labels
    if kind in {"request", "assign"}:
        text = re.sub(r"(?<![-\w])your\b", "the", text)
        if first_me:
            text = re.sub(r"\b(?:me|us)\b", first_me, text)
        return text
    if first_you:
        text = re.sub(r"(?<![-\w])your\b", f"{first_you}'s", text)
        text = re.sub(r"(?<![-\w])you(?![-\w])", first_you, text)
    else:
        text = re.sub(r"(?<![-\w])your\b", "the", text)
        text = re.sub(r"\s*\b(?:with|to|for) you(?![-\w])", "", text)
        text = re.sub(r"\s*(?<![-\w])you(?![-\w])", "", text)
    return re.sub(r"\s{2,}", " ", text).strip()


def _short(view: MeetingView, name: str | None) -> str | None:
    """An attendee's first name; a role or speaker label ("Project Manager") stays whole."""
    person = view.person(name)
    if person is not None and person.name:
        return person.first
    if name and view.person(name.split(" ")[0]) is not None:
        return name.split(" ")[0]
    return name


def _first(name: str | None) -> str | None:
    return name.split(" ")[0] if name else None


def _strip_lead(text: str) -> str:
    return _LEAD.sub("", text.strip())


def _is_name(view: MeetingView, word: str) -> bool:
    if view.person(word):
        return True
    wanted = word.lower()
    return any(
        wanted == (line.speaker or "").lower() or word == (line.speaker or "").split(" ")[0]
        for line in view.lines
    )


def _other_speaker(
    view: MeetingView, line: Line, previous: Line | None, following: Line | None
) -> str | None:
    """Who "you" most likely is: a recent speaker from the other side, else a neighbour."""
    me = view.person(line.speaker)
    if me is not None:
        position = next((k for k, other in enumerate(view.lines) if other is line), None)
        if position is not None:
            for earlier in reversed(view.lines[max(0, position - 6) : position]):
                them = view.person(earlier.speaker)
                if them is not None and them.internal != me.internal:
                    return earlier.speaker
    for other in (previous, following):
        if other and other.speaker and other.speaker != line.speaker:
            return other.speaker
    return None


def _addressee(line: Line, following: Line | None) -> str | None:
    if following and following.speaker and following.speaker != line.speaker:
        said = tidy(following.text)
        reply = _strip_lead(said) if not _AFFIRM.match(said) else said
        if _DECLINE.match(said) or _LET_ME_CHECK.match(reply):
            return None
        if _AFFIRM.match(said) or _SELF.match(reply):
            return following.speaker
    return None


def _priority(text: str) -> str | None:
    if _HIGH.search(text):
        return "high"
    if _LOW.search(text):
        return "low"
    return None


def _merge_replies(view: MeetingView, items: list[Commitment]) -> list[Commitment]:
    """A request and its owner's promise in the next turn are one task, not two."""
    by_line: dict[int, list[Commitment]] = {}
    for item in items:
        by_line.setdefault(item.line, []).append(item)
    positions = {line.index: pos for pos, line in enumerate(view.lines)}
    dropped: set[int] = set()
    merged: dict[int, Commitment] = {}
    for number, item in enumerate(items):
        if item.kind not in {"request", "assign", "third"} or item.owner is None:
            continue
        pos = positions.get(item.line)
        if pos is None or pos + 1 >= len(view.lines):
            continue
        reply = view.lines[pos + 1]
        current = merged.get(number, item)
        if (
            current.due is None
            and view.day is not None
            and reply.speaker == _speaker_of(view, item.owner)
        ):
            when = find_date(reply.text, view.day)
            if when is not None:
                current = replace(current, due=when.value)
        candidates = [
            (k, other) for k, other in enumerate(items)
            if other.line == reply.index and other.kind in {"self", "we"}
            and other.owner == item.owner
        ]  # fmt: skip
        if candidates:
            wanted = item.title.lower()
            scores = [fuzz.token_set_ratio(c.title.lower(), wanted) for _, c in candidates]
            top = max(range(len(candidates)), key=scores.__getitem__)
            best_k, best = candidates[top]
            similar = scores[top] >= 60
            if similar or (len(candidates) == 1 and not best.also):
                dropped.add(best_k)
                current = replace(
                    current, due=current.due or best.due, confidence=max(current.confidence, 0.85)
                )
        merged[number] = current
    return [merged.get(k, item) for k, item in enumerate(items) if k not in dropped]


def _speaker_of(view: MeetingView, owner: str | None) -> str | None:
    person = view.person(owner)
    if person is None:
        return owner
    for line in view.lines:
        if line.speaker and view.person(line.speaker) == person:
            return line.speaker
    return person.name


def _dedupe(items: list[Commitment]) -> list[Commitment]:
    kept: list[Commitment] = []
    for item in items:
        twin = next(
            (
                k for k, other in enumerate(kept)
                if other.owner == item.owner
                and fuzz.token_set_ratio(other.title.lower(), item.title.lower()) >= 85
            ),
            None,
        )  # fmt: skip
        if twin is None:
            kept.append(item)
        elif kept[twin].due is None and item.due is not None:
            kept[twin] = replace(kept[twin], due=item.due)
    return kept


def person_email(view: MeetingView, name: str | None) -> str | None:
    """The attendee email for a name, if the name is an attendee."""
    person: Person | None = view.person(name)
    return person.email if person else None
