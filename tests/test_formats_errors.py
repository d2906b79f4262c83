"""FormatError message layout and pickling (errors cross dask/multiprocessing boundaries)."""
import pickle

from pipeline.formats.errors import FormatError


def test_message_and_pickle():
    e = FormatError("/d/a.sens", "expected 4, found 3.", offset=0, field="version", hint="fix it.")
    assert str(e) == "/d/a.sens (byte 0, field 'version'): expected 4, found 3. What to do: fix it."
    assert isinstance(e, ValueError)
    back = pickle.loads(pickle.dumps(e))
    assert str(back) == str(e) and (back.offset, back.field, back.hint) == (0, "version", "fix it.")
    assert str(FormatError("x.tsv", "bad.")) == "x.tsv: bad."
