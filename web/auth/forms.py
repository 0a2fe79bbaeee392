"""Login forms (flask-wtf: each carries its CSRF token)."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import HiddenField, PasswordField, StringField
from wtforms.validators import DataRequired, Length, Regexp


class StaffLoginForm(FlaskForm):
    username = StringField("用户名", validators=[DataRequired(), Length(max=100)])
    password = PasswordField("密码", validators=[DataRequired(), Length(max=200)])
    next = HiddenField()


class PhoneForm(FlaskForm):
    phone = StringField("手机号", validators=[DataRequired(), Length(max=32)])
    next = HiddenField()


class CodeForm(FlaskForm):
    phone = HiddenField(validators=[DataRequired(), Length(max=32)])
    code = StringField("验证码", validators=[DataRequired(), Regexp(r"^\s*\d{6}\s*$")])
    next = HiddenField()


class EmptyForm(FlaskForm):
    """A form with nothing but its CSRF token (logout, language, buttons)."""
