"""The bare endpoint the HTTP benchmark compares the workouts API with: `POST
/api/workout/sessions` validates the same JSON body, inserts one row (text, integer,
timestamp and jsonb columns, like a workout) with psycopg 3 through a small pool, and
answers 201 with the row. No outbox, no events, no logs: the least a service could do.

    BENCH_BARE_DATABASE_URL=postgresql://user:password@127.0.0.1/db \
        uv run python bench/bare_api.py --port 8099

With `--verify-with JWKS_FILE --issuer ISSUER` it also verifies each request's bearer token
as the services do (`servicekit.auth`, the same dependency): the difference between the two
is what verification costs a request.

It creates its table when it starts; uvicorn serves it with uvloop and httptools, one worker.
"""

from __future__ import annotations

import argparse
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import uvicorn
from fastapi import Depends, FastAPI, status
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from contracts.identity import DEFAULT_AUDIENCE
from servicekit.auth import KeySet, TokenVerifier, authenticated, jwks_from_file

DATABASE_URL_ENV = "BENCH_BARE_DATABASE_URL"
#: As many connections as a service process keeps (servicekit's default pool size).
POOL_SIZE = 10

CREATE_TABLE = """
create table if not exists bench_workouts (
    id uuid primary key,
    user_id bigint not null,
    title text not null,
    session_type text not null,
    status text not null,
    date timestamptz not null,
    duration integer,
    intensity integer,
    exercises jsonb not null,
    created_at timestamptz not null default now()
)
"""
INSERT = """
insert into bench_workouts
    (id, user_id, title, session_type, status, date, duration, intensity, exercises)
values (%s, %s, %s, %s, %s, %s, %s, %s, %s)
returning created_at
"""


class Model(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


class SetIn(Model):
    reps: Annotated[int, Field(ge=0, le=1000)]
    weight: Annotated[float | None, Field(ge=0, le=2000)] = None


class ExerciseIn(Model):
    name: Annotated[str, Field(min_length=1, max_length=200)]
    sets: list[SetIn] = Field(default_factory=list)


class WorkoutIn(Model):
    user_id: Annotated[int, Field(gt=0)]
    title: Annotated[str, Field(min_length=1, max_length=200)]
    session_type: str = "solo"
    status: str = "completed"
    date: AwareDatetime | None = None
    duration: Annotated[int | None, Field(ge=1, le=1440)] = None
    intensity: Annotated[int | None, Field(ge=1, le=10)] = None
    exercises: list[ExerciseIn] = Field(default_factory=list)


class WorkoutOut(WorkoutIn):
    id: uuid.UUID
    date: AwareDatetime
    created_at: datetime


def create_app(database_url: str, verifier: TokenVerifier | None = None) -> FastAPI:
    pool = AsyncConnectionPool(database_url, min_size=POOL_SIZE, max_size=POOL_SIZE, open=False)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await pool.open(wait=True)
        async with pool.connection() as connection:
            await connection.execute(CREATE_TABLE)
        try:
            yield
        finally:
            await pool.close()

    app = FastAPI(title="Bare insert", lifespan=lifespan)
    app.state.token_verifier = verifier
    checks: list[Any] = [] if verifier is None else [Depends(authenticated)]

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/api/workout/sessions", status_code=status.HTTP_201_CREATED, dependencies=checks)
    async def log_workout(workout: WorkoutIn) -> WorkoutOut:
        workout_id = uuid.uuid4()
        date = workout.date or datetime.now(UTC)
        exercises = [exercise.model_dump(by_alias=True) for exercise in workout.exercises]
        async with pool.connection() as connection:
            cursor = await connection.execute(
                INSERT,
                (
                    workout_id,
                    workout.user_id,
                    workout.title,
                    workout.session_type,
                    workout.status,
                    date,
                    workout.duration,
                    workout.intensity,
                    Jsonb(exercises),
                ),
            )
            row = await cursor.fetchone()
        assert row is not None
        return WorkoutOut(
            **workout.model_dump(exclude={"date"}), id=workout_id, date=date, created_at=row[0]
        )

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument(
        "--database-url",
        default=os.environ.get(DATABASE_URL_ENV),
        help=f"a libpq URL (default: ${DATABASE_URL_ENV})",
    )
    parser.add_argument(
        "--verify-with",
        type=Path,
        metavar="JWKS_FILE",
        help="verify bearer tokens against this key set",
    )
    parser.add_argument("--issuer", help="the issuer tokens must name (with --verify-with)")
    parser.add_argument("--audience", default=DEFAULT_AUDIENCE)
    arguments = parser.parse_args()
    if not arguments.database_url:
        parser.error(f"give --database-url or set {DATABASE_URL_ENV}")
    verifier = None
    if arguments.verify_with is not None:
        if not arguments.issuer:
            parser.error("--verify-with needs --issuer")
        verifier = TokenVerifier(
            KeySet(jwks_from_file(arguments.verify_with)),
            issuer=arguments.issuer,
            audience=arguments.audience,
        )
    uvicorn.run(
        create_app(arguments.database_url, verifier),
        host="127.0.0.1",
        port=arguments.port,
        loop="uvloop",
        http="httptools",
        workers=1,
        log_level="warning",
        access_log=False,
    )


if __name__ == "__main__":
    main()
