"""``monespace register person|professional`` and ``monespace request-code``: onboarding
from the command line, one from options or many from a CSV file.

A CSV file has a header naming its columns (the order is free; the column names are listed
in :data:`PERSON_COLUMNS` and :data:`PROFESSIONAL_COLUMNS`, and in ``--help``). Each row is
registered in a transaction of its own: a refused row is reported with its row number (the
header is row 1) and the library's reason, which names the field and never its value, and
the other rows are kept. The exit status is 1 when any row was refused.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Mapping
from datetime import date, datetime
from pathlib import Path
from typing import Any

import click

from .._space import Space
from ..accounts import Contact, PatientIdentity, PostalAddress
from ..errors import MonespaceError, ValidationError
from ..identities import Professional
from ..identity import INS, INS_NIR_OID, INSTraits, Sex
from ._common import CLI_OPERATOR, db_option, open_db
from ._errors import CHECK_INPUT, library_error
from ._progress import Progress

__all__ = ["PERSON_COLUMNS", "PROFESSIONAL_COLUMNS", "register", "request_code"]

#: The columns of a CSV of people: (name, required, meaning).
PERSON_COLUMNS: tuple[tuple[str, bool, str], ...] = (
    ("nir", True, "the NIR (15 digits, key included)"),
    ("birth_name", True, "the birth name (nom de naissance)"),
    ("first_given_name", True, "the first given name at birth"),
    ("birth_date", True, "YYYY-MM-DD"),
    ("sex", True, "M or F"),
    ("given_names", False, "every given name at birth, separated by spaces"),
    ("birth_place_code", False, "the INSEE code of the place of birth (99xxx abroad)"),
    ("used_name", False, "the name in use, when it differs"),
    ("vitale_serial", False, "the carte Vitale serial number (asked at activation)"),
    ("email", False, "where the invitation is sent"),
    ("phone", False, "for codes sent by SMS"),
    ("address", False, "the postal address lines, separated by |"),
    ("postal_code", False, "with address"),
    ("city", False, "with address"),
    ("oid", False, f"the INS OID (default {INS_NIR_OID})"),
)
#: The columns of a CSV of professionals: (name, required, meaning).
PROFESSIONAL_COLUMNS: tuple[tuple[str, bool, str], ...] = (
    ("rpps", True, "the 11-digit RPPS number"),
    ("profession", True, "the TRE_G15 profession code (10: médecin, 21: pharmacien, ...)"),
    ("name", True, "the name shown to patients"),
    ("specialty", False, "the specialty code (SM26: médecine générale, ...)"),
    ("mssante", False, "the MSSanté address"),
    ("finess", False, "the FINESS number of the establishment"),
    ("establishment", False, "the establishment's name"),
)


class _RowError(Exception):
    """A row the command line itself refuses (a missing or malformed cell)."""


def _columns_help(columns: tuple[tuple[str, bool, str], ...]) -> str:
    # \b keeps click from re-wrapping the list into one paragraph.
    return "\b\nCSV columns (a header row names them; comma or semicolon separated):\n" + "\n".join(
        f"  {name}{' (required)' if required else ''}: {meaning}"
        for name, required, meaning in columns
    )


def _optional(row: Mapping[str, str | None], name: str) -> str | None:
    value = (row.get(name) or "").strip()
    return value or None


def _required(row: Mapping[str, str | None], name: str) -> str:
    value = _optional(row, name)
    if value is None:
        raise _RowError(f"'{name}' is empty")
    return value


def _birth_date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        # Not the date itself: the message goes to a terminal and maybe a log.
        raise _RowError("'birth_date' must be a date as YYYY-MM-DD") from None


def _person(row: Mapping[str, str | None]) -> PatientIdentity:
    """The identity a row (or the options) describes; the library validates each field."""
    sex: Sex
    match _required(row, "sex").upper():
        case "M":
            sex = "M"
        case "F":
            sex = "F"
        case _:
            raise _RowError("'sex' must be M or F")
    names = _optional(row, "given_names")
    traits = INSTraits(
        birth_name=_required(row, "birth_name"),
        first_given_name=_required(row, "first_given_name"),
        given_names=tuple(names.split()) if names else (),
        birth_date=_birth_date(_required(row, "birth_date")),
        sex=sex,
        birth_place_code=_optional(row, "birth_place_code"),
    )
    lines = _optional(row, "address")
    postal_code, city = _optional(row, "postal_code"), _optional(row, "city")
    address = None
    if lines is not None or postal_code is not None or city is not None:
        if lines is None or postal_code is None or city is None:
            raise _RowError("a postal address needs 'address', 'postal_code' and 'city'")
        address = PostalAddress(
            lines=tuple(part.strip() for part in lines.split("|") if part.strip()),
            postal_code=postal_code,
            city=city,
        )
    return PatientIdentity(
        INS(_required(row, "nir"), _optional(row, "oid") or INS_NIR_OID, traits),
        Contact(
            email=_optional(row, "email"),
            phone=_optional(row, "phone"),
            postal_address=address,
        ),
        used_name=_optional(row, "used_name"),
        vitale_serial=_optional(row, "vitale_serial"),
    )


def _professional(row: Mapping[str, str | None]) -> Professional:
    return Professional(
        _required(row, "rpps"),
        _required(row, "profession"),
        _required(row, "name"),
        specialty=_optional(row, "specialty"),
        mssante=_optional(row, "mssante"),
        finess=_optional(row, "finess"),
        establishment=_optional(row, "establishment"),
    )


def _read_csv(
    path: Path, columns: tuple[tuple[str, bool, str], ...]
) -> list[tuple[int, dict[str, str | None]]]:
    """The rows of *path*, numbered as a spreadsheet shows them (the header is row 1).

    Comma or semicolon separated (what a French spreadsheet writes), UTF-8 with or without
    a byte order mark. A header with an unknown or a missing required column is refused
    before anything is registered: a misspelt column would otherwise be dropped silently.
    """
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise click.BadParameter(f"{path} is not UTF-8 text", param_hint="--csv") from None
    except OSError as exc:
        raise click.BadParameter(
            f"{path}: {exc.strerror or 'cannot be read'}", param_hint="--csv"
        ) from None
    first = text.partition("\n")[0]
    delimiter = ";" if first.count(";") > first.count(",") else ","
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter)
    header = [name.strip() for name in (reader.fieldnames or [])]
    known = {name for name, _, _ in columns}
    unknown = [name for name in header if name not in known]
    missing = [name for name, required, _ in columns if required and name not in header]
    if not header or unknown or missing:
        problems = []
        if unknown:
            problems.append(f"unknown column(s) {', '.join(unknown)}")
        if missing:
            problems.append(f"missing column(s) {', '.join(missing)}")
        raise click.BadParameter(
            f"{path}: {'; '.join(problems) or 'no header'} (see --help for the columns)",
            param_hint="--csv",
        )
    reader.fieldnames = header
    rows: list[tuple[int, dict[str, str | None]]] = []
    for number, row in enumerate(reader, start=2):
        if None in row:
            rows.append((number, {"\x00": "more cells than columns"}))
            continue
        if any(value and value.strip() for value in row.values()):
            rows.append((number, dict(row)))
    return rows


def _register_rows(
    space: Space,
    rows: list[tuple[int, dict[str, str | None]]],
    register_one: Callable[[Space, dict[str, str | None]], str],
    label: str | None,
) -> tuple[list[str], list[tuple[int, Exception]]]:
    """Register each row in a transaction of its own: the ids registered, and the row
    number and error of each refused row. A file's rows move a progress bar (*label*); one
    from options none."""
    done: list[str] = []
    refused: list[tuple[int, Exception]] = []
    with Progress(label or "", len(rows), show=label is not None) as progress:
        for number, row in rows:
            try:
                if "\x00" in row:
                    raise _RowError(row["\x00"] or "malformed row")
                done.append(register_one(space, row))
            except (_RowError, MonespaceError, ValueError, TypeError) as exc:
                # The library's messages name the field and the rule, never the value.
                refused.append((number, exc))
            progress.advance()
    return done, refused


def _report(kind: str, done: list[str], refused: list[tuple[int, Exception]], total: int) -> None:
    click.echo(f"registered {len(done)} of {total} {kind}")
    for number, exc in refused:
        click.echo(f"  refused row {number}: {exc}", err=True)
    if refused:
        click.echo(
            f"correct the refused rows and register them from a file of those rows alone "
            f"(the other {kind} are registered)",
            err=True,
        )
        raise click.exceptions.Exit(1)


def _refused_alone(exc: Exception) -> click.ClickException:
    """The error for one registration from options: the reason and the next step."""
    if isinstance(exc, MonespaceError):
        return library_error(exc)
    return click.ClickException(f"{exc}: {CHECK_INPUT}")


@click.group()
def register() -> None:
    """Register people (to invite them) and professionals (in the directory)."""


def _person_options(function: Any) -> Any:
    for name, _, meaning in reversed(PERSON_COLUMNS):
        flag = "--" + name.replace("_", "-")
        function = click.option(flag, name, help=meaning[0].upper() + meaning[1:] + ".")(function)
    return function


@register.command("person", epilog=_columns_help(PERSON_COLUMNS))
@db_option(must_exist=True)
@click.option(
    "--csv",
    "csv_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Register every row of this CSV file (with a header; columns below).",
)
@_person_options
def register_person(db: str, csv_file: Path | None, **fields: str | None) -> None:
    """Register one person from the options, or many from a CSV file (state
    ``registered``: 'monespace invite' then sends each the information and a code).

    \b
    Examples:
      monespace register person --db monespace.db --nir 255081416802538 \\
          --birth-name MARTIN --first-given-name LEA --birth-date 1955-08-01 --sex F \\
          --email lea.martin@example.org --vitale-serial 1234567890
      monespace register person --db monespace.db --csv people.csv
    """
    rows = _rows_or_options(csv_file, fields, PERSON_COLUMNS)

    def one(space: Space, row: dict[str, str | None]) -> str:
        return space.accounts.register_patient(CLI_OPERATOR, _person(row)).id

    with open_db(db) as space:
        done, refused = _register_rows(space, rows, one, "Registering people" if csv_file else None)
    if csv_file is None and done:
        click.echo(f"registered: space {done[0]} (state registered)")
        return
    if csv_file is None:
        raise _refused_alone(refused[0][1])
    _report("people", done, refused, len(rows))


@register.command("professional", epilog=_columns_help(PROFESSIONAL_COLUMNS))
@db_option(must_exist=True)
@click.option(
    "--csv",
    "csv_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Register every row of this CSV file (with a header; columns below).",
)
@click.option("--rpps", help="The 11-digit RPPS number.")
@click.option("--profession", help="The TRE_G15 profession code (10: médecin).")
@click.option("--name", help="The name shown to patients.")
@click.option("--specialty", help="The specialty code (SM26: médecine générale).")
@click.option("--mssante", help="The MSSanté address.")
@click.option("--finess", help="The FINESS number of the establishment.")
@click.option("--establishment", help="The establishment's name.")
def register_professional(db: str, csv_file: Path | None, **fields: str | None) -> None:
    """Add professionals to the directory (or update them), one from the options or many
    from a CSV file. They then log in to the demo with their RPPS number.

    \b
    Examples:
      monespace register professional --db monespace.db --rpps 10003112348 \\
          --profession 10 --name "Dr Claire Martin" --specialty SM26
      monespace register professional --db monespace.db --csv directory.csv
    """
    rows = _rows_or_options(csv_file, fields, PROFESSIONAL_COLUMNS)

    def one(space: Space, row: dict[str, str | None]) -> str:
        return space.access.register_professional(CLI_OPERATOR, _professional(row)).rpps

    with open_db(db) as space:
        done, refused = _register_rows(
            space, rows, one, "Registering professionals" if csv_file else None
        )
    if csv_file is None and done:
        click.echo(f"registered: professional RPPS {done[0]}")
        return
    if csv_file is None:
        raise _refused_alone(refused[0][1])
    _report("professionals", done, refused, len(rows))


def _rows_or_options(
    csv_file: Path | None,
    fields: dict[str, str | None],
    columns: tuple[tuple[str, bool, str], ...],
) -> list[tuple[int, dict[str, str | None]]]:
    given = {name: value for name, value in fields.items() if value is not None}
    if csv_file is not None:
        if given:
            raise click.UsageError("give either --csv or the options of one, not both")
        return _read_csv(csv_file, columns)
    missing = [
        "--" + name.replace("_", "-")
        for name, required, _ in columns
        if required and not given.get(name)
    ]
    if missing:
        raise click.UsageError(f"missing {', '.join(missing)} (or --csv FILE)")
    return [(1, dict(given))]


@click.command("request-code")
@db_option(must_exist=True)
@click.option("--nir", required=True, help="The NIR of the invited person.")
@click.option("--vitale", help="The carte Vitale serial number (self-service).")
@click.option("--birth-date", type=click.DateTime(["%Y-%m-%d"]), help="YYYY-MM-DD (self-service).")
@click.option(
    "--channel",
    type=click.Choice(["email", "sms"]),
    default="email",
    show_default=True,
    help="Self-service: where the code goes (e-mail, else a letter; or SMS).",
)
def request_code(
    db: str, nir: str, vitale: str | None, birth_date: datetime | None, channel: str
) -> None:
    """Send an invited person a new provisional code; the previous one stops working.

    With --vitale and --birth-date it is the holder's self-service request, proved with
    the carte Vitale (wrong details get the one uniform answer, and count as a failed
    attempt). With the NIR alone it is the operator at the counter (the 3422). Either way
    the code is written to the outbox, never printed: run 'monespace dispatch' to send it.

    \b
    Examples:
      monespace request-code --db monespace.db --nir 255081416802538
      monespace request-code --db monespace.db --nir 255081416802538 \\
          --vitale 1234567890 --birth-date 1955-08-01 --channel sms
    """
    if (vitale is None) != (birth_date is None):
        raise click.UsageError("self-service needs both --vitale and --birth-date")
    with open_db(db) as space:
        if vitale is not None and birth_date is not None:
            space.accounts.request_code(
                nir=nir, vitale_serial=vitale, birth_date=birth_date.date(), channel=channel
            )
        else:
            try:
                patient = space.accounts.find_by_nir(CLI_OPERATOR, nir)
            except ValidationError as exc:
                raise click.BadParameter(str(exc), param_hint="--nir") from exc
            space.accounts.issue_code(CLI_OPERATOR, patient.id, send=True)
    click.echo(
        "a new provisional code was written to the outbox; the previous one no longer "
        "works (deliver it with 'monespace dispatch')"
    )
