-- Plugin settings, as Moodle keeps them: block_dedication's session limits are read from here
-- (docs/engine.md §8).
CREATE TABLE {prefix}config_plugins (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    plugin VARCHAR(100) NOT NULL DEFAULT 'core',
    name VARCHAR(100) NOT NULL DEFAULT '',
    value LONGTEXT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
CREATE UNIQUE INDEX {uix:confplug_plunam} ON {prefix}config_plugins (plugin, name);
