"""Audit key: a MAC on every audit record and on the head row, and the key's id in the head.

Records written before this migration keep ``mac`` empty: they are legacy records, checked by
the hash chain only, until ``readerapp audit key create`` gives the study a key (see
docs/STUDY.md, "Audit key").

Revision ID: 0002
Revises: 0001
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('audit_log') as batch:
        batch.add_column(sa.Column('mac', sa.String(length=64), nullable=True))
    with op.batch_alter_table('audit_head') as batch:
        batch.add_column(sa.Column('key_id', sa.String(length=64), nullable=True))
        batch.add_column(sa.Column('mac', sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('audit_head') as batch:
        batch.drop_column('mac')
        batch.drop_column('key_id')
    with op.batch_alter_table('audit_log') as batch:
        batch.drop_column('mac')
