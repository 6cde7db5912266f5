"""Platforms name their package-URL type; hostings keep the package URL it gives them.

A platform's ``purl_type`` says which package-URL ecosystem its hostings belong to
(``huggingface``, ``github``, ``bitbucket``, ``mlflow``), or NULL for none. Every
existing platform gets NULL: which ecosystem a platform is cannot be read from its slug or
kind with certainty, so an administrator sets it; until then its hostings carry no purl.

``hostings.purl`` is the package URL of the hosting, built by the service (one function,
``service.domain.purls``) from the platform's type, the hosting's name and its revision, and
rewritten whenever one of those changes. It is NULL where the platform has no type. The
index serves the lookup of models by purl, with or without a version (a range of the
C-collated text).

Revision ID: 0023_platform_purl_type
Revises: 0024_restate_folded
Create Date: 2026-11-30
"""

from service.db.migrate import run_script

revision = "0023_platform_purl_type"
down_revision = "0024_restate_folded"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_script("""
    ALTER TABLE platforms ADD COLUMN purl_type text
      CHECK (purl_type IN ('huggingface', 'github', 'bitbucket', 'mlflow'));
    ALTER TABLE hostings ADD COLUMN purl text CHECK (length(purl) BETWEEN 7 AND 1000);
    CREATE INDEX hostings_purl ON hostings ((purl COLLATE "C")) WHERE purl IS NOT NULL;
    """)


def downgrade() -> None:
    run_script("""
    DROP INDEX hostings_purl;
    ALTER TABLE hostings DROP COLUMN purl;
    ALTER TABLE platforms DROP COLUMN purl_type;
    """)
