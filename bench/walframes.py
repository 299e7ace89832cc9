#!/usr/bin/env python3
"""Which b-trees the commits in a WAL wrote: frames per commit, by table or index.

Usage: bench/walframes.py DB   (DB-wal must exist: stop the writer with kill -9, or
copy both files while it runs). Reads only the frames of the WAL's current cycle
(those whose salts match the header), maps each page to its b-tree with `dbstat`
on a copy of the database with the WAL applied, and prints frames per commit.
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


def main(db):
    with open(db + "-wal", "rb") as wal:
        written = list(frames(wal.read()))
    commits = sum(1 for _, commit in written if commit)
    if not commits:
        sys.exit("no commit in the WAL's current cycle: rerun with a longer load")
    with tempfile.TemporaryDirectory() as scratch:
        copy = os.path.join(scratch, "copy.db")
        shutil.copy(db, copy)
        shutil.copy(db + "-wal", copy + "-wal")
        conn = sqlite3.connect(copy)
        owner = dict(conn.execute("SELECT pageno, name FROM dbstat"))
        conn.close()
    per_tree = collections.Counter(owner.get(page, "(free or header)") for page, _ in written)
    print(f"{len(written)} frames in {commits} commits: {len(written) / commits:.1f} frames per commit")
    for name, count in per_tree.most_common():
        print(f"  {name:<40} {count / commits:6.2f}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
