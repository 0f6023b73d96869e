"""``manage.py import_queue_splitter``: Skytools queue_splitter configuration files become split queues."""
from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from relay.models import BrokerConnection, RelayedQueue
from relay.runs.run_queue import get_queue

from . import services

pytestmark = pytest.mark.django_db

PASSWORDS = ("src-Pa55", "dst-Pa55")

# The example of queue_splitter(1), with the common keys a Skytools installation carries.
MANUAL = """\
[queue_splitter]
job_name        = queue_spliter_sourcedb_sourceq_targetdb

src_db          = dbname=sourcedb host=127.0.0.1 password=src-Pa55
dst_db          = dbname=targetdb host=127.0.0.1 user=batch password='dst-Pa55'

pgq_queue_name  = sourceq
loop_delay      = 0.5

logfile         = ~/log/%(job_name)s.log
pidfile         = ~/pid/%(job_name)s.pid
use_skylog      = 0
connection_lifetime = 1200
"""
JOB = "queue_spliter_sourcedb_sourceq_targetdb"


def write(tmp_path, text, name="splitter.ini"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def run(path) -> str:
    out = StringIO()
    call_command("import_queue_splitter", path, stdout=out)
    return out.getvalue()


def assert_no_password(text):
    for password in PASSWORDS:
        assert password not in text


def test_the_manual_example_becomes_a_queue_split_into_the_target_database(tmp_path):
    output = run(write(tmp_path, MANUAL))

    assert output.splitlines() == [
        f"queue {JOB}: created (PgQ queue sourceq on dbname=sourcedb host=127.0.0.1 password=***, "
        f"consumer {JOB}, split into the queues of dbname=targetdb host=127.0.0.1 user=batch password=***)",
        f"Imported 1 queue: created (run it with: manage.py relay_once {JOB}).",
    ]
    queue = get_queue(JOB)  # what relay_once <job_name> looks up
    assert (queue.target, queue.connection, queue.queue_name, queue.consumer_name, queue.wait_duration) == (
        RelayedQueue.Target.POSTGRES, None, "sourceq", JOB, 0.5)
    assert queue.source_url == "dbname=sourcedb host=127.0.0.1 password=src-Pa55"
    assert queue.target_url == "dbname=targetdb host=127.0.0.1 user=batch password='dst-Pa55'"
    assert (queue.create_target_queues, queue.enabled) == (True, True)


def test_the_same_file_twice_changes_nothing_and_says_so(tmp_path):
    path = write(tmp_path, MANUAL)
    run(path)
    before = RelayedQueue.objects.values().get(name=JOB)

    output = run(path)

    assert output.splitlines() == [f"queue {JOB}: unchanged", f"Nothing changed: queue {JOB} already matches the file."]
    assert RelayedQueue.objects.values().get(name=JOB) == before
    assert RelayedQueue.objects.count() == 1


def test_a_changed_file_updates_what_it_decides_and_keeps_what_the_admin_set(tmp_path):
    run(write(tmp_path, MANUAL))
    RelayedQueue.objects.filter(name=JOB).update(enabled=False, create_target_queues=False, max_failures=3)

    output = run(write(tmp_path, MANUAL.replace("loop_delay      = 0.5", "loop_delay = 2")
                       .replace("password=src-Pa55", "password=src-Pa55 port=6432")))

    assert output.splitlines() == [f"queue {JOB}: updated (changed: src_db, loop_delay)",
                                   f"Imported 1 queue: updated (run it with: manage.py relay_once {JOB})."]
    queue = RelayedQueue.objects.get(name=JOB)
    assert queue.source_url == "dbname=sourcedb host=127.0.0.1 password=src-Pa55 port=6432"
    assert queue.wait_duration == 2.0
    assert (queue.enabled, queue.create_target_queues, queue.max_failures) == (False, False, 3)
    assert_no_password(output)


def test_skytools_3_defaults_and_references(tmp_path):
    """[queue_splitter3], job_name from the file's name, pgq_consumer_id and %(job_name)s as Skytools reads them."""
    text = ("[queue_splitter3]\nsrc_db = postgresql://app:src-Pa55@oltp.example.com/shop\n"
            "dst_db = dbname=batch\npgq_queue_name = shop_events\npgq_consumer_id = %(job_name)s_consumer\n"
            "queue_field = extra1\n")

    output = run(write(tmp_path, text, name="shop_split.ini"))

    assert output.splitlines()[0] == ("note: [queue_splitter3] job_name: not given, so the file's name "
                                      "'shop_split' (as Skytools does)")
    queue = get_queue("shop_split")
    assert (queue.consumer_name, queue.queue_name, queue.wait_duration) == ("shop_split_consumer", "shop_events", 1.0)
    assert "postgresql://app:***@oltp.example.com/shop" in output
    assert_no_password(output)


@pytest.mark.parametrize(("change", "error"), [
    (lambda t: t.replace("[queue_splitter]", "[londiste]"),
     "no [queue_splitter] section (sections found: [londiste])"),
    (lambda t: t.replace("src_db ", "#src_db "), "[queue_splitter] src_db: required key missing"),
    (lambda t: t.replace("dst_db ", "dst_dbb "), "[queue_splitter] dst_dbb: unknown key (queue_splitter's keys: "),
    (lambda t: t.replace("loop_delay      = 0.5", "loop_delay = soon"),
     "[queue_splitter] loop_delay: expected a number of seconds, got 'soon'"),
    (lambda t: t.replace("loop_delay      = 0.5", "loop_delay = -1"),
     "[queue_splitter] loop_delay: must be a finite number, at least 0, got -1"),
    (lambda t: t + "src_db = dbname=other password=src-Pa55\n", "[queue_splitter] src_db: given twice (line 14)"),
    (lambda t: t.replace("dbname=targetdb host=127.0.0.1 user=batch password='dst-Pa55'",
                         "amqp://guest:dst-Pa55@rabbit/"),
     "[queue_splitter] dst_db: expected a libpq connection string (dbname=... host=...) or a postgresql:// URL"),
    (lambda t: t.replace("password='dst-Pa55'", "password=dst-Pa55%"),
     "[queue_splitter] dst_db: a % must be written %% unless it starts %(name)s"),
    (lambda t: t + "queue_field = type\n",
     "[queue_splitter] queue_field: only extra1 is supported: the target queue is read from ev_extra1"),
    (lambda t: t.replace("pgq_queue_name  = sourceq", "pgq_queue_name ="),
     "[queue_splitter] pgq_queue_name: must not be empty"),
    (lambda t: t.replace("[queue_splitter]\n", ""), "not an INI file: line 1 comes before any [section]"),
    (lambda t: t.replace("pgq_queue_name  = sourceq", "pgq_queue_name sourceq"),
     "not an INI file: cannot read line 7"),
    (lambda t: t.replace("%(job_name)s.log", "%(jobname)s.log").replace("= sourceq", "= %(jobname)s"),
     "[queue_splitter] pgq_queue_name: refers to %(jobname)s, which is not set"),
])
def test_a_bad_file_is_refused_naming_the_key_and_changes_nothing(tmp_path, change, error):
    with pytest.raises(CommandError) as refused:
        run(write(tmp_path, change(MANUAL)))

    assert str(refused.value).startswith(error), str(refused.value)
    assert_no_password(str(refused.value))
    assert not RelayedQueue.objects.exists()


def test_a_rabbitmq_queue_of_the_same_name_is_left_alone(tmp_path):
    connection = BrokerConnection.objects.create(name="rabbit")
    RelayedQueue.objects.create(name=JOB, queue_name="orders", source_url="dbname=app", connection=connection)

    with pytest.raises(CommandError) as refused:
        run(write(tmp_path, MANUAL))

    assert str(refused.value) == (f"[queue_splitter] job_name: a relayed queue named '{JOB}' already exists and "
                                  "publishes to RabbitMQ: give the job another name, or delete that queue")
    assert RelayedQueue.objects.get(name=JOB).queue_name == "orders"


def test_a_missing_file_is_named(tmp_path):
    with pytest.raises(CommandError, match=r"nowhere\.ini: cannot read: No such file or directory"):
        run(str(tmp_path / "nowhere.ini"))


@pytest.mark.django_db(transaction=True)
def test_as_a_process_a_bad_file_exits_1_with_one_line_and_no_password(tmp_path):
    process = services.manage("import_queue_splitter",
                              write(tmp_path, MANUAL.replace("use_skylog", "use_skylogg")))

    assert process.returncode == 1
    assert process.stderr.strip().splitlines() == [
        "CommandError: [queue_splitter] use_skylogg: unknown key (queue_splitter's keys: job_name, src_db, dst_db, "
        "pgq_queue_name, pgq_consumer_id, loop_delay, queue_field; and Skytools' common keys such as logfile, "
        "pidfile, use_skylog)"]
    assert "Traceback" not in process.stderr
    assert_no_password(process.stdout + process.stderr)
