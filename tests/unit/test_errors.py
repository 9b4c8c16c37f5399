"""Error translation at the botocore boundary, and the error tree."""

from __future__ import annotations

import inspect
import pickle
import re
from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

import uow
from tests.models import Everything, User
from uow import _execute
from uow._execute import HANDLED_CODES, THROTTLING_CODES, TRANSIENT_CODES, retryable, translate
from uow.changes import Change, ChangeKind
from uow.identity import Key

CHANGE = Change(ChangeKind.UPDATE, User, Key("users", "u1"))


def client_error(code: str, **extra: Any) -> ClientError:
    """A ClientError as botocore raises it for a DynamoDB error code."""
    response: Any = {"Error": {"Code": code, "Message": f"{code} happened"}, **extra}
    return ClientError(response, "UpdateItem")


class TestTranslate:
    """Every DynamoDB error code uow handles maps to its uow error, chained."""

    @pytest.mark.parametrize("code", sorted(HANDLED_CODES), ids=str)
    def test_every_handled_code_is_mapped(self, code: str) -> None:
        """The translated cause has the mapped type and chains the botocore error."""
        error = client_error(code)
        cause = translate(error, CHANGE)
        assert isinstance(cause, HANDLED_CODES[code])
        assert cause.__cause__ is error
        assert "User 'u1'" in str(cause)

    def test_every_code_the_executor_names_is_in_the_table(self) -> None:
        """A code tested for anywhere in the executor but missing from HANDLED_CODES fails this test."""
        source = inspect.getsource(_execute)
        named = set(
            re.findall(r'"([A-Z][A-Za-z]+(?:Exception|Error|Exceeded|Unavailable))"', source)
        )
        named |= THROTTLING_CODES | TRANSIENT_CODES
        assert named - set(HANDLED_CODES) == set()

    def test_a_create_that_exists_is_a_duplicate_key(self) -> None:
        """A failed create-only condition is DuplicateKeyError, a ConflictError."""
        create = Change(ChangeKind.CREATE, User, Key("users", "u1"))
        cause = translate(client_error("ConditionalCheckFailedException"), create)
        assert isinstance(cause, uow.DuplicateKeyError)

    def test_an_unknown_code_is_a_service_error_with_the_code(self) -> None:
        """Codes uow does not know become ServiceError carrying the code."""
        cause = translate(client_error("SomethingNew"), CHANGE)
        assert isinstance(cause, uow.ServiceError)
        assert cause.code == "SomethingNew"

    def test_network_errors_are_service_errors(self) -> None:
        """A connection failure becomes ServiceError named after the botocore exception."""
        cause = translate(EndpointConnectionError(endpoint_url="http://127.0.0.1:1"), CHANGE)
        assert isinstance(cause, uow.ServiceError)
        assert cause.code == "EndpointConnectionError"


class TestRetryable:
    """Only failures another attempt may get past are retried."""

    @pytest.mark.parametrize(
        ("error", "expected"),
        [
            pytest.param(
                client_error("ProvisionedThroughputExceededException"), True, id="throttled"
            ),
            pytest.param(client_error("InternalServerError"), True, id="5xx"),
            pytest.param(client_error("ConditionalCheckFailedException"), False, id="condition"),
            pytest.param(client_error("ValidationException"), False, id="validation"),
            pytest.param(
                client_error(
                    "TransactionCanceledException",
                    CancellationReasons=[{"Code": "None"}, {"Code": "TransactionConflict"}],
                ),
                True,
                id="transaction-conflict",
            ),
            pytest.param(
                client_error(
                    "TransactionCanceledException",
                    CancellationReasons=[
                        {"Code": "TransactionConflict"},
                        {"Code": "ConditionalCheckFailed"},
                    ],
                ),
                False,
                id="transaction-condition-failed",
            ),
            pytest.param(
                EndpointConnectionError(endpoint_url="http://127.0.0.1:1"), True, id="network"
            ),
        ],
    )
    def test_retryable(self, error: Exception, expected: bool) -> None:
        """Throttling, 5xx, network failures and pure conflicts are retried; conditions never."""
        assert retryable(error) is expected


class TestTree:
    """The error tree of DESIGN.md §6, with the closest builtins."""

    @pytest.mark.parametrize(
        ("error", "bases"),
        [
            pytest.param(uow.ValidationError, (uow.UowError, ValueError), id="validation"),
            pytest.param(uow.UsageError, (uow.UowError, RuntimeError), id="usage"),
            pytest.param(uow.NotMapped, (uow.UowError, TypeError), id="not-mapped"),
            pytest.param(uow.NotFoundError, (uow.UowError, LookupError), id="not-found"),
            pytest.param(uow.SchemaError, (uow.UowError,), id="schema"),
            pytest.param(uow.CommitError, (uow.UowError,), id="commit"),
            pytest.param(uow.ConflictError, (uow.ChangeError,), id="conflict"),
            pytest.param(uow.DuplicateKeyError, (uow.ConflictError,), id="duplicate"),
            pytest.param(uow.UniqueViolation, (uow.ChangeError,), id="unique"),
            pytest.param(uow.ThrottledError, (uow.ChangeError,), id="throttled"),
            pytest.param(uow.AbortedError, (uow.ChangeError,), id="aborted"),
            pytest.param(uow.ServiceError, (uow.ChangeError,), id="service"),
        ],
    )
    def test_bases(self, error: type[Exception], bases: tuple[type[Exception], ...]) -> None:
        """Each error subclasses its group and the closest builtin."""
        assert all(issubclass(error, base) for base in bases)

    def test_a_schema_error_is_not_bad_input(self) -> None:
        """`SchemaError` is about stored data, so no input-error handler catches it by accident."""
        assert not issubclass(uow.SchemaError, ValueError | uow.ValidationError)


class TestPickling:
    """Errors cross process boundaries (a process pool's results) intact."""

    def test_commit_error_and_its_causes_round_trip(self) -> None:
        """A CommitError with a ServiceError cause unpickles with its changes, causes and code."""
        change = uow.Change(uow.ChangeKind.DELETE, Everything, uow.Key("everything", "e1"))
        cause = uow.ServiceError("boom", code="InternalServerError")
        error = uow.CommitError("1 failed", succeeded=[], failed=[(change, cause)])
        again = pickle.loads(pickle.dumps(error))
        assert str(again) == "1 failed"
        ((change_back, cause_back),) = again.failed
        assert change_back == change
        assert isinstance(cause_back, uow.ServiceError)
        assert cause_back.code == "InternalServerError"
