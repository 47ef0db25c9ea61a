"""The README's example queries run against the schema; scripts/postgres is
quiet and idempotent."""

import re
import subprocess

from ledger_sql import NOW_MS, PORT, ROOT, Batch, apply

README = ROOT / "schemas" / "ledger" / "README.md"


def test_readme_sql_examples_run(db):
    b = Batch()
    b.add(user=0x000102030405060708090a0b0c0d0e0f, torrent=0x0123456789abcdef0123456789abcdef01234567,
          up=10, down=20, event=2, seeding=True, seq=1, at_ms=NOW_MS)
    apply(db, b)
    blocks = re.findall(r"```sql\n(.*?)```", README.read_text(), re.S)
    assert len(blocks) >= 5
    ran = 0
    for block in blocks:
        for stmt in [s.strip() for s in block.split(";") if s.strip()]:
            if "p_topic text" in stmt:
                continue   # the signature, not a query
            db.execute(stmt)
            ran += 1
    assert ran >= 7
    row = db.execute("SELECT credited_uploaded, credited_downloaded FROM privtrak.user_ratios"
                     " WHERE user_id = decode('000102030405060708090a0b0c0d0e0f', 'hex')").fetchone()
    assert row == (10, 20)


def test_postgres_script_is_quiet_and_idempotent(pg_server):
    script = str(ROOT / "scripts" / "postgres")
    again = subprocess.run([script, "start", str(PORT)], capture_output=True, text=True, timeout=60)
    assert (again.returncode, again.stdout, again.stderr) == (0, "", "")
    url = subprocess.run([script, "url", str(PORT)], capture_output=True, text=True, check=True).stdout
    assert url == f"postgresql://postgres@127.0.0.1:{PORT}/privtrak\n"
    bad = subprocess.run([script, "start", "5432"], capture_output=True, text=True)
    assert bad.returncode != 0 and "5432" in bad.stderr
