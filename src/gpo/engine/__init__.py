"""The search engine every method runs on: the loop with its checkpoints and rollback
(``search``), what a search records (``trajectory``), when it stops (``stoppers``) and what
it reports as it goes (``events``). Nothing here knows any method."""
