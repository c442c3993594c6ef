from functools import cache

from django.contrib.auth import get_user_model
from django.db import connections, router
from rest_framework import exceptions
from rest_framework.authentication import TokenAuthentication
from rest_framework.authtoken.models import Token

from common.db import prepared_statement_cursor


@cache
def _token_user_query(alias: str) -> tuple[str, list[str], list[tuple]]:
    """The SELECT of a token's user on a database, the user's field names in select order, and per
    field the converters the ORM would apply to its value (SQLite's datetimes, for example)."""
    connection = connections[alias]
    user_model = get_user_model()
    fields = user_model._meta.concrete_fields
    columns = ", ".join(f"u.{connection.ops.quote_name(f.column)}" for f in fields)
    sql = (
        f"SELECT {columns} FROM {user_model._meta.db_table} u "  # noqa: S608 -- names from the models
        f"JOIN {Token._meta.db_table} t ON t.user_id = u.{user_model._meta.pk.column} WHERE t.key = %s"
    )
    converters = []
    for field in fields:
        column = field.get_col(user_model._meta.db_table)
        # Field has get_db_converters; the stubs only give it to expressions.
        found = connection.ops.get_db_converters(column) + field.get_db_converters(connection)  # type: ignore[attr-defined]
        converters.append((column, tuple(found)))
    return sql, [f.attname for f in fields], converters


class BearerTokenAuthentication(TokenAuthentication):
    """DRF's token auth, spelled `Authorization: Bearer <token>` as the API reference asks.

    Same rules as DRF's (unknown token, inactive user: 401), with the lookup as one plain SQL join:
    every API request pays for it: building the ORM query cost more than running it, and on
    PostgreSQL the statement is prepared once per connection.
    """

    keyword = "Bearer"

    def authenticate_credentials(self, key):
        user_model = get_user_model()
        alias = router.db_for_read(user_model)
        connection = connections[alias]
        sql, names, converters = _token_user_query(alias)
        with prepared_statement_cursor(alias) as cursor:
            cursor.execute(sql, [key])
            row = cursor.fetchone()
        if row is None:
            raise exceptions.AuthenticationFailed("Invalid token.")
        values = []
        for value, (column, field_converters) in zip(row, converters, strict=True):
            for convert in field_converters:
                value = convert(value, column, connection)
            values.append(value)
        user = user_model.from_db(alias, names, values)
        if not user.is_active:
            raise exceptions.AuthenticationFailed("User inactive or deleted.")
        token = Token(key=key, user_id=user.pk)
        token.user = user
        return user, token
