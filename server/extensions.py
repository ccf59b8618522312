"""Extensions created without an app; the factory attaches them."""
from flask_compress import Compress
from flask_jwt_extended import JWTManager
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import MetaData

# Named constraints so that Alembic migrations (batch mode on SQLite) can alter them.
metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)
db = SQLAlchemy(metadata=metadata)
jwt = JWTManager()
migrate = Migrate()
# Compression per view (@compress.compressed()), never app-wide: responses that carry a token or reflect input
# stay uncompressed (BREACH); the pull pages and the app shell, which do neither, are the large ones.
compress = Compress()
