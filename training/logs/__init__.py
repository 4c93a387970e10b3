"""Reading impression logs (DESIGN.md §1): listing a log's files, reading and checking them, streaming shards too
large for memory, and what a trainer warns of in them."""
