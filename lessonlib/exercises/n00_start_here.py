"""Notebook 00 · start here: its exercises and their checks."""

from __future__ import annotations

from typing import Any

from ..i18n import N_, _
from .core import Hint, exercise, message_problem


@exercise("00.1", 1, N_("Write a conversation"), answer="messages", solution='''
messages = [
    {"role": "system", "content": "You are a helpful cooking assistant."},
    {"role": "user", "content": "Which ingredients do I need for pancakes?"},
]
''', wrong='messages = [{"role": "user", "text": "Which ingredients do I need for pancakes?"}]')
def _check_conversation(messages: Any) -> str:
    problem = message_problem(messages)
    if problem:
        raise Hint(problem)
    if messages[0]["role"] != "system":
        raise Hint(_("start with a 'system' message: it tells the model who it is and how to answer."))
    if messages[-1]["role"] != "user":
        raise Hint(_("end with the 'user' message: the model replies to the last message."))
    return _("this is the format every chat model and every fine-tuning file of the lesson uses.")


@exercise("00.2", 2, N_("Turn it into a training example"), answer="example", setup='''
messages = [
    {"role": "system", "content": "You are a helpful cooking assistant."},
    {"role": "user", "content": "Which ingredients do I need for pancakes?"},
]
''', solution='''
example = {"messages": messages + [
    {"role": "assistant", "content": "Flour, eggs, milk, a pinch of salt and butter for the pan."},
]}
''', wrong='example = {"messages": messages}')
def _check_training_example(example: Any) -> str:
    from .. import data

    if not isinstance(example, dict) or "messages" not in example:
        raise Hint(_("a training example is a dict with one key, 'messages': {'messages': [...]}."))
    problem = message_problem(example["messages"])
    if problem:
        raise Hint(problem)
    findings = data.check_example(example)
    if findings:
        raise Hint(_("the data doctor says: {message}. Add the reply you want the model to learn.").format(message=findings[0].message))
    if example["messages"][-1]["role"] != "assistant":
        raise Hint(_("end with the 'assistant' message: it is the answer the model learns to write."))
    return _("one line of a fine-tuning file: the conversation and the reply to learn. Notebook 03 checks whole "
             "files of them.")
