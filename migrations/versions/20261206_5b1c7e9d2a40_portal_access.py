"""portal access: when an account's portal links were last revoked

Revision ID: 5b1c7e9d2a40
Revises: 608988632e1e
Create Date: 2026-12-06 13:45:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import models.tables

# revision identifiers, used by Alembic.
revision: str = "5b1c7e9d2a40"
down_revision: str | Sequence[str] | None = "608988632e1e"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "portal_access",
        sa.Column("account_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("revoked_before", models.tables.UtcDateTime(timezone=True), nullable=False),
        sa.Column("revoked_by", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.PrimaryKeyConstraint("account_id"),
    )


def downgrade() -> None:
    op.drop_table("portal_access")
