from pathlib import Path

from qa.wording import plural, shown_path


def test_plural():
    assert [plural(n, "article") for n in (0, 1, 2)] == ["0 articles", "1 article", "2 articles"]
    assert plural(1, "copy", "copies") == "1 copy" and plural(3, "copy", "copies") == "3 copies"


def test_shown_path_reads_as_a_path():
    assert shown_path(Path("index")) == "./index" and shown_path("data/idx") == "./data/idx"
    assert shown_path("/srv/index") == "/srv/index" and shown_path("../index") == "../index"
    assert shown_path("~/index") == "~/index"
