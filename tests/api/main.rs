//! Black-box tests: real servers on port 0, real SQLite files, real HTTP.
