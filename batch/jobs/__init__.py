"""Whole jobs as the command line runs them: each opens what it needs, works, writes outputs.

A job composes the stages (manifest → payload → run → api → ledger → outputs) so that the CLI
stays a thin layer and everything it does can be done from Python too: ``run`` (run and
validate), ``pull`` (pulls and the listener), ``views`` (status and export), ``doctor``
(a read-only check of a tenant), on ``connect``
(targets, clients, ledgers, output paths), ``tenants`` (tenants by name: the config file) and
``password`` (a tenant's password from a command).
"""

from typing import TYPE_CHECKING

from batch.lazy import loader

if TYPE_CHECKING:
    from batch.jobs.connect import (
        NO_HOST,
        Connection,
        Target,
        check_ledger,
        ledger_file,
        open_bound,
        open_client,
        open_ledger,
        output_path,
    )
    from batch.jobs.doctor import DoctorReport, doctor_job, render_doctor
    from batch.jobs.password import run_password_command
    from batch.jobs.pull import finalized_job, listen_job, table_job
    from batch.jobs.run import RunResult, ValidationResult, check_outputs, run_job, validate_job
    from batch.jobs.tenants import (
        Picked,
        Setting,
        Tenant,
        TenantFile,
        config_file,
        load_tenants,
        pick_tenant,
    )
    from batch.jobs.views import export_job, ledger_for, status_job

__all__ = [
    "NO_HOST",
    "Connection",
    "DoctorReport",
    "Picked",
    "RunResult",
    "Setting",
    "Target",
    "Tenant",
    "TenantFile",
    "ValidationResult",
    "check_ledger",
    "check_outputs",
    "config_file",
    "doctor_job",
    "export_job",
    "finalized_job",
    "ledger_file",
    "ledger_for",
    "listen_job",
    "load_tenants",
    "open_bound",
    "open_client",
    "open_ledger",
    "output_path",
    "pick_tenant",
    "render_doctor",
    "run_job",
    "run_password_command",
    "status_job",
    "table_job",
    "validate_job",
]

#: Where each public name lives: imported on first use, so that a command loads only the
#: modules it needs.
_HOMES = {
    "NO_HOST": "batch.jobs.connect",
    "Connection": "batch.jobs.connect",
    "Target": "batch.jobs.connect",
    "check_ledger": "batch.jobs.connect",
    "ledger_file": "batch.jobs.connect",
    "open_bound": "batch.jobs.connect",
    "open_client": "batch.jobs.connect",
    "open_ledger": "batch.jobs.connect",
    "output_path": "batch.jobs.connect",
    "DoctorReport": "batch.jobs.doctor",
    "doctor_job": "batch.jobs.doctor",
    "render_doctor": "batch.jobs.doctor",
    "run_password_command": "batch.jobs.password",
    "finalized_job": "batch.jobs.pull",
    "listen_job": "batch.jobs.pull",
    "table_job": "batch.jobs.pull",
    "RunResult": "batch.jobs.run",
    "ValidationResult": "batch.jobs.run",
    "check_outputs": "batch.jobs.run",
    "run_job": "batch.jobs.run",
    "validate_job": "batch.jobs.run",
    "Picked": "batch.jobs.tenants",
    "Setting": "batch.jobs.tenants",
    "Tenant": "batch.jobs.tenants",
    "TenantFile": "batch.jobs.tenants",
    "config_file": "batch.jobs.tenants",
    "load_tenants": "batch.jobs.tenants",
    "pick_tenant": "batch.jobs.tenants",
    "export_job": "batch.jobs.views",
    "ledger_for": "batch.jobs.views",
    "status_job": "batch.jobs.views",
}


__getattr__ = loader(__name__, _HOMES, globals())
