"""Line-based reading and editing of INI files (AWS shared credentials and config) byte for byte.

configparser reads these files but cannot write one back unchanged, because it drops comments and
rewrites spacing. IniFile keeps every line as read and applies the rules of
configparser.RawConfigParser, the parser botocore uses:

- a line whose stripped text starts with '#' or ';' is a comment; there are no inline comments;
- a header is '[NAME]' after stripping, and text after the last ']' is ignored;
- an option is NAME, the first '=' or ':', then the value, each stripped, and NAME is lower-cased;
- a non-blank line indented deeper than the line that started the current option or section
  continues the option's value, and blank lines inside a value belong to it;
- a repeated section, or a repeated option within one section, is an error.

Lines end in "\\n", "\\r\\n" or "\\r" (Python's universal newlines), each kept as found, and a UTF-8
byte-order mark is kept. read_ini checks every file it parses against configparser itself, and
apply_edit reads its own result back, so a file this module misreads is rejected, not rewritten.
"""

from __future__ import annotations

import configparser
import re
from dataclasses import dataclass, field

UTF8_BOM = b"\xef\xbb\xbf"
COMMENT_PREFIXES = ("#", ";")
DEFAULT_SECTION = configparser.DEFAULTSECT
SECTION_HEADER = configparser.RawConfigParser.SECTCRE
OPTION_LINE = configparser.RawConfigParser.OPTCRE
LINE_BREAK = re.compile(r"\r\n|\r|\n")
BYTES_LINE_BREAK = re.compile(rb"\r\n|\r|\n")
NON_SPACE = re.compile(r"\S")
# A value that configparser reads back unchanged from one line: printable ASCII without spaces.
SINGLE_LINE_VALUE = re.compile(r"[!-~]+")

IniValues = dict[str, dict[str, str]]


class IniFormatError(ValueError):
    """A file this module cannot parse or edit with certainty, at 1-based line_number (0: none)."""

    def __init__(self, line_number: int, reason: str) -> None:
        super().__init__(f"line {line_number}: {reason}" if line_number else reason)
        self.line_number = line_number
        self.reason = reason


@dataclass(frozen=True)
class Line:
    text: str
    ending: str  # "\n", "\r\n", "\r", or "" on a last line without a newline


@dataclass
class Option:
    """One option: its name line, where its name and first-line value sit, and its value lines."""

    name: str  # lower-cased, as configparser stores it
    index: int  # 0-based line index of the "name = value" line
    name_span: tuple[int, int]  # character offsets within that line's text
    value_span: tuple[int, int]
    value_lines: list[str]
    continuation: list[int] = field(default_factory=list)  # indices of indented value lines

    @property
    def value(self) -> str:
        """The value as configparser returns it."""
        return "\n".join(self.value_lines).rstrip()

    @property
    def last_index(self) -> int:
        return self.continuation[-1] if self.continuation else self.index


@dataclass
class Section:
    name: str
    index: int  # 0-based line index of the header
    options: dict[str, Option] = field(default_factory=dict)

    @property
    def last_index(self) -> int:
        """The index of the section's last header, option or value line (not comments or blanks)."""
        return max([self.index, *(option.last_index for option in self.options.values())])


@dataclass
class IniFile:
    lines: list[Line]
    sections: list[Section]
    has_bom: bool

    def section(self, name: str) -> Section | None:
        return next((section for section in self.sections if section.name == name), None)

    def values(self) -> IniValues:
        """Map each section to its options and values as configparser reads them (DEFAULT apart)."""
        return {
            section.name: {option.name: option.value for option in section.options.values()}
            for section in self.sections
        }

    @property
    def newline(self) -> str:
        """The file's first line ending, for lines keyrot adds; "\\n" if it has none."""
        return next((line.ending for line in self.lines if line.ending), "\n")

    def to_bytes(self) -> bytes:
        body = "".join(line.text + line.ending for line in self.lines).encode("utf-8")
        return (UTF8_BOM if self.has_bom else b"") + body


@dataclass(frozen=True)
class SectionEdit:
    """Set single-line option values in one section and delete other options with their lines."""

    section: str
    set_values: dict[str, str]  # lower-case option name -> new value
    remove_options: frozenset[str] = frozenset()
    add_missing: bool = False  # append missing options, or the whole section, instead of raising


def parse_ini(data: bytes) -> IniFile:
    """Parse data into lines and sections, raising IniFormatError where configparser would fail."""
    has_bom = data.startswith(UTF8_BOM)
    text = _decode(data[len(UTF8_BOM) :] if has_bom else data)
    lines = split_lines(text)
    return IniFile(lines, _SectionReader().read(lines), has_bom)


def read_ini(data: bytes) -> IniFile:
    """Parse data like parse_ini, then check that configparser reads the same values from it."""
    ini = parse_ini(data)
    expected = merge_defaults(ini.values())
    try:
        found = configparser_values(ini)
    except configparser.Error as error:
        raise IniFormatError(0, f"configparser cannot read it: {error}") from None

    if found != expected:
        raise IniFormatError(0, "configparser reads different values from it than keyrot does")
    return ini


def split_lines(text: str) -> list[Line]:
    lines = []
    start = 0
    for match in LINE_BREAK.finditer(text):
        lines.append(Line(text[start : match.start()], match.group()))
        start = match.end()
    if start < len(text):
        lines.append(Line(text[start:], ""))
    return lines


def merge_defaults(values: IniValues) -> IniValues:
    """Apply DEFAULT's options to every other section, as configparser's items() does."""
    defaults = values.get(DEFAULT_SECTION, {})
    merged = {name: {**defaults, **options} for name, options in values.items()}
    if not defaults:
        merged.pop(DEFAULT_SECTION, None)
    return merged


def configparser_values(ini: IniFile) -> IniValues:
    """Read ini's text with configparser.RawConfigParser and return its sections and values."""
    parser = configparser.RawConfigParser()
    parser.read_string("\n".join(line.text for line in ini.lines))
    values = {name: dict(parser.items(name)) for name in parser.sections()}
    if parser.defaults():
        values[DEFAULT_SECTION] = dict(parser.defaults())
    return values


def check_editable(
    ini: IniFile, section: Section, rewritten: tuple[str, ...], watched: tuple[str, ...]
) -> None:
    """Raise IniFormatError if section's options cannot be edited with certainty.

    Each option named in rewritten must be one line whose value has no spaces, because the AWS
    SDK for JavaScript v3 (shared-ini-file-loader) reads "KEY ; note" as KEY and a comment while
    botocore reads the whole text. No indented line may look like an option named in watched,
    because such a line continues the option above it instead of setting one.
    """
    for option in section.options.values():
        if option.name in rewritten:
            _check_single_line(option)
        for index in option.continuation:
            _check_not_disguised(ini.lines[index].text, index, option, watched)


def apply_edit(ini: IniFile, edit: SectionEdit) -> bytes:
    """Return ini's bytes with edit applied and every other line unchanged, checked by rereading."""
    for value in edit.set_values.values():
        if not SINGLE_LINE_VALUE.fullmatch(value):
            raise ValueError("a new value must be printable ASCII without spaces")

    result = IniFile(_edited_lines(ini, edit), [], ini.has_bom).to_bytes()
    _check_edit(ini, result, edit)
    return result


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        line_number = len(BYTES_LINE_BREAK.findall(data, 0, error.start)) + 1
        raise IniFormatError(
            line_number, f"byte 0x{data[error.start]:02x} is not valid UTF-8"
        ) from None


class _SectionReader:
    """configparser.RawConfigParser's line rules (Python 3.11), keeping line positions."""

    def __init__(self) -> None:
        self.sections: dict[str, Section] = {}
        self.section: Section | None = None
        self.option: Option | None = None
        self.indent_level = 0

    def read(self, lines: list[Line]) -> list[Section]:
        for index, line in enumerate(lines):
            self._read_line(index, line.text)
        return list(self.sections.values())

    def _read_line(self, index: int, text: str) -> None:
        stripped = text.strip()
        if stripped.startswith(COMMENT_PREFIXES):
            return
        if not stripped:
            if self.option is not None:
                self.option.value_lines.append("")
            return

        found = NON_SPACE.search(text)
        indent = found.start() if found else 0
        if self.option is not None and indent > self.indent_level:
            self.option.value_lines.append(stripped)
            self.option.continuation.append(index)
            return

        self.indent_level = indent
        header = SECTION_HEADER.match(stripped)
        if header:
            self._start_section(index, header.group("header"))
        elif stripped.startswith("[") and "]" not in stripped:
            raise IniFormatError(index + 1, f"section header {stripped!r} has no closing ]")
        elif self.section is None:
            raise IniFormatError(index + 1, "text before the first [section] header")
        else:
            self._add_option(index, stripped, indent)

    def _start_section(self, index: int, name: str) -> None:
        earlier = self.sections.get(name)
        if earlier is not None:
            raise IniFormatError(
                index + 1, f"section [{name}] appears twice (first on line {earlier.index + 1})"
            )
        self.section = self.sections[name] = Section(name, index)
        self.option = None

    def _add_option(self, index: int, stripped: str, indent: int) -> None:
        assert self.section is not None
        match = OPTION_LINE.match(stripped)
        if not match:
            raise IniFormatError(
                index + 1, "expected a [section] header, name = value or a comment"
            )

        name = match.group("option").rstrip().lower()
        if not name:
            raise IniFormatError(index + 1, "option without a name before '=' or ':'")
        earlier = self.section.options.get(name)
        if earlier is not None:
            raise IniFormatError(
                index + 1,
                f"option {name} appears twice in section [{self.section.name}] "
                f"(first on line {earlier.index + 1})",
            )

        name_span = (indent, indent + len(match.group("option").rstrip()))
        value_span = (indent + match.start("value"), indent + len(stripped))
        self.option = Option(name, index, name_span, value_span, [match.group("value")])
        self.section.options[name] = self.option


def _check_single_line(option: Option) -> None:
    if option.continuation:
        raise IniFormatError(
            option.continuation[0] + 1,
            f"the value of {option.name} (line {option.index + 1}) continues on this indented "
            "line; keyrot only rewrites one-line values",
        )
    if any(character.isspace() for character in option.value):
        raise IniFormatError(
            option.index + 1,
            f"the value of {option.name} contains spaces, so the key cannot be told apart "
            "from a comment",
        )


def _check_not_disguised(text: str, index: int, option: Option, names: tuple[str, ...]) -> None:
    match = OPTION_LINE.match(text.strip())
    if match and match.group("option").rstrip().lower() in names:
        raise IniFormatError(
            index + 1,
            f"this line is indented, so it continues the value of {option.name} on line "
            f"{option.index + 1} instead of setting {match.group('option').strip()}; "
            "remove the indentation",
        )


def _edited_lines(ini: IniFile, edit: SectionEdit) -> list[Line]:
    section = ini.section(edit.section)
    if section is None:
        return _append_section(ini, edit)
    return _edit_section(ini, section, edit)


def _edit_section(ini: IniFile, section: Section, edit: SectionEdit) -> list[Line]:
    replaced: dict[int, Line] = {}
    removed: set[int] = set()
    for name, value in edit.set_values.items():
        option = section.options.get(name)
        if option is not None:
            _check_single_line(option)
            replaced[option.index] = _with_value(ini.lines[option.index], option, value)
    for name in edit.remove_options:
        option = section.options.get(name)
        if option is not None and name not in edit.set_values:
            removed.update([option.index, *option.continuation])

    missing = [name for name in edit.set_values if name not in section.options]
    if missing and not edit.add_missing:
        raise IniFormatError(0, f"section [{section.name}] has no {missing[0]} option")
    remaining = [option for option in section.options.values() if option.index not in removed]
    anchor = max([section.index, *(option.last_index for option in remaining)])
    added = [_new_option_line(ini, section, name, edit.set_values[name]) for name in missing]
    return _rebuild(ini, replaced, removed, anchor, added)


def _with_value(line: Line, option: Option, value: str) -> Line:
    start, end = option.value_span
    return Line(line.text[:start] + value + line.text[end:], line.ending)


def _new_option_line(ini: IniFile, section: Section, name: str, value: str) -> str:
    """Format a new option like a credential option already in the section, else "name = value".

    The new line is never indented, because an indented line could continue the option above it.
    """
    model = next(
        (option for option in section.options.values() if option.name.startswith("aws_")),
        None,
    )
    if model is None:
        return f"{name} = {value}"

    text = ini.lines[model.index].text
    name_start, name_end = model.name_span
    value_start, value_end = model.value_span
    shown_name = name.upper() if text[name_start:name_end].isupper() else name
    return shown_name + text[name_end:value_start] + value + text[value_end:]


def _rebuild(
    ini: IniFile, replaced: dict[int, Line], removed: set[int], anchor: int, added: list[str]
) -> list[Line]:
    lines: list[Line] = []
    for index, line in enumerate(ini.lines):
        if index in removed:
            continue
        line = replaced.get(index, line)
        if index == anchor and added:
            lines.append(Line(line.text, line.ending or ini.newline))
            lines.extend(Line(text, ini.newline) for text in added)
        else:
            lines.append(line)

    # A file without a final newline keeps that shape when lines are removed or added at its end.
    if ini.lines and not ini.lines[-1].ending and lines and lines[-1].ending:
        lines[-1] = Line(lines[-1].text, "")
    return lines


def _append_section(ini: IniFile, edit: SectionEdit) -> list[Line]:
    if not edit.add_missing:
        raise IniFormatError(0, f"no section [{edit.section}]")

    newline = ini.newline
    lines = list(ini.lines)
    if lines and not lines[-1].ending:
        lines[-1] = Line(lines[-1].text, newline)
    if lines and lines[-1].text.strip():
        lines.append(Line("", newline))
    lines.append(Line(f"[{edit.section}]", newline))
    lines.extend(Line(f"{name} = {value}", newline) for name, value in edit.set_values.items())
    return lines


def _check_edit(before: IniFile, result: bytes, edit: SectionEdit) -> None:
    expected = before.values()
    options = expected.setdefault(edit.section, {})
    for name in edit.remove_options:
        options.pop(name, None)
    options.update(edit.set_values)

    try:
        after = read_ini(result)
    except IniFormatError as error:
        raise IniFormatError(0, f"the edited file would not parse ({error})") from None
    if after.values() != expected:
        raise IniFormatError(0, "the edited file would not read back with the new values")
