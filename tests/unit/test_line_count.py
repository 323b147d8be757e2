"""Line numbers of the export's blocks: every ending the CSV parser knows counts one line."""

from __future__ import annotations

import csv
import io

import pytest

from tap_spaaza_users.records.lines import count_lines


@pytest.mark.parametrize(
    "text",
    [
        "",
        "a",
        "a\n",
        "a\nb",
        "a\r\nb\r\n",
        "a\rb\r",
        "a\r\nb\rc\nd",
        "\r\r\n\n\r",
        "é\r\n€\n\U0001f600\r",
    ],
)
def test_lines_are_counted_as_the_csv_parser_reads_them(text: str) -> None:
    physical = io.StringIO(text, newline="").readlines()
    assert count_lines(text) == len(physical)
    reader = csv.reader(physical)
    for _ in reader:
        pass
    assert count_lines(text) == reader.line_num
