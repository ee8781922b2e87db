"""The prompt vocabulary: reply tags and parsing (``tags``), the checks that tell a usable
prompt from scaffolding (``checks``), and the blocks meta-prompts are built from (``blocks``)."""
