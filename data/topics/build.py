"""Rebuild ``questions.csv`` from the chatterbot-corpus wheel (BSD-3-Clause, see data/README.md).

    pip download --no-deps -d /tmp/cc chatterbot-corpus==1.3.3 && unzip -o /tmp/cc/*.whl -d /tmp/cc
    python data/topics/build.py /tmp/cc/chatterbot_corpus/data/english

Each row is the first line of one conversation (a question or remark written by the corpus's
contributors) and the topic file it comes from. Exact repeats are dropped; trivia, much larger than the
others, is sampled down (seeded) so that no topic is most of the file.
"""

import csv
import random
import sys
from pathlib import Path

import yaml

TOPICS = {"ai": None, "coding": None, "emotion": None, "trivia": 90}

rows = []
for topic, cap in TOPICS.items():
    corpus = yaml.safe_load((Path(sys.argv[1]) / f"{topic}.yml").read_text(encoding="utf-8"))
    lines = list(dict.fromkeys(" ".join(c[0].split()) for c in corpus["conversations"] if isinstance(c[0], str) and c[0].strip()))
    if cap:
        lines = random.Random(18).sample(lines, cap)
    rows += [(line, topic) for line in lines]
with open(Path(__file__).with_name("questions.csv"), "w", newline="", encoding="utf-8") as handle:
    writer = csv.writer(handle)
    writer.writerow(["question", "topic"])
    writer.writerows(rows)
print(len(rows), "rows")
