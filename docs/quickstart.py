"""The quickstart: a model, a store, three units of work. Run: `python docs/quickstart.py`.

The store follows the standard AWS configuration chain: set `AWS_ENDPOINT_URL`
(plus credentials and region) to run it against DynamoDB Local or moto.
"""

import asyncio

import attrs

import uow


# --8<-- [start:model]
@uow.model(table="qs_users", pk="user_id", unique=("email",), version="version")
@attrs.define
class User:
    user_id: str
    email: str
    name: str = ""
    visits: int = 0
    version: int = 0  # managed by uow: every write checks and increments it


# --8<-- [end:model]


async def main(endpoint_url: str | None = None) -> None:
    # --8<-- [start:store]
    async with uow.Store(endpoint_url) as store:  # one per application
        await store.create_tables(User)  # idempotent: creates what is missing
        # --8<-- [end:store]

        # --8<-- [start:create]
        async with store.session() as session:  # commits when the block ends
            session.add(User("u1", "ada@example.com", "Ada"))
            session.add(User("u2", "grace@example.com", "Grace"))
        # --8<-- [end:create]

        # --8<-- [start:change]
        async with store.session() as session:
            ada = await session.get(User, "u1")  # one strongly consistent GetItem
            assert ada is not None
            assert ada is await session.get(User, "u1")  # the identity map: no 2nd request
            ada.name = "Ada Lovelace"  # found at commit by diffing against the snapshot
            session.update(User, "u1", add={"visits": 1})  # applied to `ada` at once
            result = await session.commit()  # one UpdateItem, conditioned on the version
            print(f"change: {result.summary()}")
            print(f"ada: name={ada.name!r} visits={ada.visits} version={ada.version}")
        # --8<-- [end:change]

        # --8<-- [start:failure]
        async with store.session() as session:
            alan = User("u3", "ada@example.com", "Alan")  # the email is taken
            session.add(alan)
            try:
                await session.commit()
            except uow.CommitError as error:
                for change, cause in error.failed:
                    print(f"failed: {change.describe()}: {type(cause).__name__}")
            print(f"still pending: {[change.describe() for change in session.pending]}")
            alan.email = "alan@example.com"  # fix the record; the change is still pending
            result = await session.commit()  # sends only what failed
            print(f"retry: {result.summary()}")
        # --8<-- [end:failure]


if __name__ == "__main__":
    asyncio.run(main())
