#!/usr/bin/env python3
"""Which b-trees the commits in a WAL wrote: frames per commit, by table or index.

Usage: bench/walframes.py DB...   (each DB-wal must exist: stop the writer with
kill -9, or copy both files while it runs). Reads only the frames of each WAL's
current cycle (those whose salts match its header), maps each page to its b-tree
with `dbstat` on a copy of the database with the WAL applied, and prints frames per
commit over all the samples given.
"""
import collections
import os
import shutil
import sqlite3
import struct
import sys
import tempfile


def frames(wal_bytes):
    _, _, page_size, _, salt1, salt2, _, _ = struct.unpack(">8I", wal_bytes[:32])
    at = 32
    while at + 24 + page_size <= len(wal_bytes):
        page, commit_size, s1, s2 = struct.unpack(">4I", wal_bytes[at:at + 16])
        if (s1, s2) != (salt1, salt2):
            break
        yield page, commit_size != 0
        at += 24 + page_size


def sample(db):
    with open(db + "-wal", "rb") as wal:
        written = list(frames(wal.read()))
    with tempfile.TemporaryDirectory() as scratch:
        copy = os.path.join(scratch, "copy.db")
        shutil.copy(db, copy)
        shutil.copy(db + "-wal", copy + "-wal")
        conn = sqlite3.connect(copy)
        owner = dict(conn.execute("SELECT pageno, name FROM dbstat"))
        conn.close()
    commits = sum(1 for _, commit in written if commit)
    return commits, collections.Counter(owner.get(page, "(free or header)") for page, _ in written)


def main(dbs):
    commits, per_tree = 0, collections.Counter()
    for db in dbs:
        n, trees = sample(db)
        commits += n
        per_tree += trees
    if not commits:
        sys.exit("no commit in the WALs' current cycles: take more samples")
    total = sum(per_tree.values())
    print(f"{total} frames in {commits} commits: {total / commits:.1f} frames per commit")
    for name, count in per_tree.most_common():
        print(f"  {name:<40} {count / commits:6.2f}")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(sys.argv[1:])
