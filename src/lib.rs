//! hoard: a self-contained backup appliance for game-server directories that speaks the
//! Pterodactyl panel's client backup API and ships its own browser UI.
//!
//! Layout: [`api`] (HTTP), [`store`] (SQLite), [`archive`] (tar + zstd/gzip writer),
//! [`restore`] (safe extraction and swap), [`storage`] (archive files), [`jobs`] (workers,
//! heartbeats, hooks), [`auth`] (passwords, keys, sessions, permissions), [`config`],
//! [`cli`], [`web`] (embedded UI), [`catalogue`] (the database against the archives). Domain rules for accounts, servers and backups live in
//! [`users`], [`servers`] and [`backups`]; the activity log is read through [`activity`].

pub mod activity;
pub mod api;
pub mod app;
pub mod archive;
pub mod auth;
pub mod backups;
pub mod catalogue;
pub mod cli;
pub mod config;
pub mod error;
pub mod jobs;
pub mod links;
pub mod model;
pub mod notify;
pub mod restore;
pub mod restores;
pub mod retention;
pub mod safefs;
pub mod schedules;
pub mod servers;
pub mod storage;
pub mod store;
pub mod units;
pub mod users;
pub mod web;
