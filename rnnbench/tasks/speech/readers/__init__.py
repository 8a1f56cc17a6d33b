"""The speech task's data sources, one module each, chosen by `task.dataset` through `READERS`.

A source is a `rnnbench.tasks.speech.data.Reader`: `validate(options)` refuses what it needs or cannot honour before
anything is read, and `read(options, settings, rng)` returns a `Source` (splits of utterances, vocabulary,
identity). A new source is one new module here and one row in the table.
"""
from rnnbench.tasks.speech.readers import an4, csv_list, digits, yesno

READERS = {"digits": digits.READER, "yesno": yesno.READER, "an4": an4.READER, "csv": csv_list.READER}
