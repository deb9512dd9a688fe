-- The web interface's TOTP replay guard: the time step of the last code a user logged in with. A code
-- is accepted only for a later step, so a code seen once (shoulder-surfed, phished, replayed) is
-- worth nothing afterwards, even within its window.

ALTER TABLE users ADD COLUMN totp_last_step INTEGER;
