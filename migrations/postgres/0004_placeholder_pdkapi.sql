-- Placeholder for the number reserved for the pdkapi branch (its
-- 0004_subscriptions_pdk.sql replaces this file when the branches merge):
-- migration numbers must be consecutive.
DO $$ BEGIN END $$;
